import assert from 'node:assert/strict';
import { after, describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import { storageSchema } from '../../src/config/schema.js';
import { isTernError, type ErrorCode } from '../../src/errors.js';
import { createPersistence } from '../../src/persistence/create.js';
import { RedisPersistence, type RedisPersistenceOptions } from '../../src/persistence/redis.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { collect, entry, message, persistenceContract, session, sub } from './contract.js';

const server = await startRedisServer({ after });

let prefixes = 0;
const newPrefix = (): string => `test-${++prefixes}:`;

// Each store gets its own key prefix on the one server.
persistenceContract('redis', async (opts) => new RedisPersistence({ url: server.url, prefix: newPrefix(), ...opts }));

const TIMEOUT = { timeout: 20_000 };

function rejectsWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isTernError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  };
}

async function openStore(t: TestContext, opts: RedisPersistenceOptions): Promise<RedisPersistence> {
  const p = new RedisPersistence(opts);
  await p.open();
  t.after(() => p.close());
  return p;
}

async function rawClient(t: TestContext, url: string): Promise<Redis> {
  const redis = new Redis(url, { lazyConnect: true, protocol: 2 });
  await redis.connect();
  t.after(() => redis.quit());
  return redis;
}

describe('redis persistence', () => {
  it('open fails with ERR_STORAGE_OPEN when no Redis listens', TIMEOUT, async () => {
    const closed = await startRedisServer({ after });
    await closed.stop();
    const p = new RedisPersistence({ url: closed.url, connectTimeoutMs: 2000 });
    await assert.rejects(p.open(), rejectsWith('ERR_STORAGE_OPEN'));
    await assert.rejects(p.getSession('a'), rejectsWith('ERR_STORAGE_CLOSED'));
  });

  it('commits fail at once with ERR_STORAGE_WRITE while Redis is down, and succeed after it is back', TIMEOUT, async (t) => {
    const own = await startRedisServer(t);
    const p = await openStore(t, { url: own.url, prefix: 'restart:' });
    await p.commit([{ type: 'putSession', session: session('before') }]);

    await own.stop();
    const started = Date.now();
    await assert.rejects(p.commit([{ type: 'putSession', session: session('down') }]), rejectsWith('ERR_STORAGE_WRITE'));
    await assert.rejects(p.purgeExpired(Date.now()), rejectsWith('ERR_STORAGE_WRITE'));
    await assert.rejects(p.getSession('before'), rejectsWith('ERR_STORAGE_OPEN'));
    await assert.rejects(collect(p.loadSessions()), rejectsWith('ERR_STORAGE_OPEN'));
    assert.ok(Date.now() - started < 2000, 'failures are immediate, not queued until a timeout');

    // The server comes back empty (no persistence); the client reconnects in the
    // background and reloads its scripts on the new connection.
    await own.start();
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await p.commit([
          { type: 'putSession', session: session('after') },
          { type: 'putMessage', message: message(1) },
          { type: 'putOutbound', clientId: 'after', entry: entry(1, 1) },
        ]);
        break;
      } catch (err) {
        assert.ok(isTernError(err, 'ERR_STORAGE_WRITE'), String(err));
        assert.ok(Date.now() < deadline, 'reconnected within 10 s');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    assert.equal(await p.getSession('down'), undefined, 'the refused commit was not applied late');
    assert.deepEqual(await p.getSession('after'), session('after'));
    assert.deepEqual((await p.loadOutbound('after'))[0]!.message, message(1));
  });

  it('two stores on different prefixes of one Redis do not see each other', TIMEOUT, async (t) => {
    const a = await openStore(t, { url: server.url, prefix: 'iso-a:' });
    const b = await openStore(t, { url: server.url, prefix: 'iso-b:', maxRetained: 1 });
    const now = 1_700_000_000_000;
    await a.commit([
      { type: 'putSession', session: session('c', { disconnectedAt: now - 10_000, expiryInterval: 1 }) },
      { type: 'putSubscription', clientId: 'c', subscription: sub('x/#') },
      { type: 'putMessage', message: message(9) },
      { type: 'putOutbound', clientId: 'c', entry: entry(1, 9) },
      { type: 'putInbound', clientId: 'c', packetId: 3 },
      { type: 'putRetained', message: message(10, { topic: 'r/1' }) },
      { type: 'putRetained', message: message(11, { topic: 'r/2' }) },
    ]);
    assert.equal(await b.getSession('c'), undefined);
    assert.deepEqual(await collect(b.loadSessions()), []);
    assert.deepEqual(await collect(b.loadSubscriptions()), []);
    assert.deepEqual(await b.loadOutbound('c'), []);
    assert.deepEqual(await b.loadInbound('c'), []);
    assert.deepEqual(await collect(b.matchRetained('#')), []);
    assert.deepEqual(await b.retainedStats(), { count: 0, bytes: 0 });
    assert.equal(await b.lastMessageId(), 0);
    // b's limit counts only b's retained messages; a message a stored is unknown to b.
    await b.commit([{ type: 'putRetained', message: message(1, { topic: 'r/b' }) }]);
    await b.commit([{ type: 'putSession', session: session('c') }]);
    await assert.rejects(
      b.commit([{ type: 'putOutbound', clientId: 'c', entry: entry(1, 9) }]),
      rejectsWith('ERR_STORAGE_INVALID_OP'),
    );
    assert.deepEqual(await b.purgeExpired(now), { sessions: [], messages: 0 });
    assert.deepEqual((await a.purgeExpired(now)).sessions, ['c']);
    assert.deepEqual(await b.getSession('c'), session('c'));
    assert.equal(await a.lastMessageId(), 11);
    assert.equal(await b.lastMessageId(), 1);
  });

  it('every key a store writes starts with its prefix', TIMEOUT, async (t) => {
    const prefix = 'layout:';
    const p = await openStore(t, { url: server.url, prefix });
    await p.commit([
      { type: 'putSession', session: session('c', { disconnectedAt: 1, expiryInterval: 10 }) },
      { type: 'putSubscription', clientId: 'c', subscription: sub('a') },
      { type: 'putMessage', message: message(1, { expiresAt: 5 }) },
      { type: 'putOutbound', clientId: 'c', entry: entry(1, 1) },
      { type: 'putInbound', clientId: 'c', packetId: 1 },
      { type: 'putRetained', message: message(2, { topic: 'r', expiresAt: 5 }) },
    ]);
    const redis = await rawClient(t, server.url);
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', 'layout*', 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    assert.ok(keys.length >= 10, `${keys.length} keys`);
    for (const key of keys) assert.ok(key.startsWith(prefix), key);
    // After the session and retained slot go, only the store-wide keys remain.
    await p.commit([
      { type: 'deleteSession', clientId: 'c' },
      { type: 'deleteRetained', topic: 'r' },
    ]);
    assert.equal(await redis.hlen(`${prefix}messages`), 0, 'messages without references are collected');
    assert.equal(await redis.hlen(`${prefix}message-refs`), 0);
    assert.equal(await redis.hlen(`${prefix}message-expiry`), 0);
    assert.equal(await redis.exists(`${prefix}out:c`, `${prefix}sub:c`, `${prefix}in:c`), 0);
  });

  it('client ids and topics with separators, newlines and non-ASCII round-trip and purge', TIMEOUT, async (t) => {
    const p = await openStore(t, { url: server.url, prefix: newPrefix() });
    const ids = ['a:b', 'a\nb', '(x', '[y', 'ü 🐦', 'out:z', '-', '+'];
    const now = 1_700_000_000_000;
    const expired = message(1, { expiresAt: now });
    await p.commit(
      ids.flatMap((c, i) => [
        { type: 'putSession', session: session(c) } as const,
        { type: 'putSubscription', clientId: c, subscription: sub(`f/${c}`) } as const,
        { type: 'putMessage', message: expired } as const,
        { type: 'putOutbound', clientId: c, entry: entry(i, 1) } as const,
        { type: 'putRetained', message: message(100 + i, { topic: `t/${c}`, expiresAt: now }) } as const,
      ]),
    );
    assert.deepEqual((await collect(p.loadSessions())).map((s) => s.clientId).sort(), [...ids].sort());
    assert.deepEqual(
      (await collect(p.loadSubscriptions())).map((s) => `${s.clientId}=${s.subscription.filter}`).sort(),
      ids.map((c) => `${c}=f/${c}`).sort(),
    );
    assert.deepEqual((await collect(p.matchRetained('t/+'))).map((m) => m.topic).sort(), ids.map((c) => `t/${c}`).sort());
    assert.deepEqual(await p.purgeExpired(now), { sessions: [], messages: 2 * ids.length });
    for (const c of ids) assert.deepEqual(await p.loadOutbound(c), [], c);
    assert.deepEqual(await p.retainedStats(), { count: 0, bytes: 0 });
  });

  it('purgeExpired works through more expired items than one script run takes', TIMEOUT, async (t) => {
    const p = await openStore(t, { url: server.url, prefix: newPrefix() });
    const now = 1_700_000_000_000;
    const ops = [];
    for (let i = 0; i < 2500; i++) {
      ops.push({ type: 'putSession', session: session(`s${i}`, { disconnectedAt: now - 1000, expiryInterval: 1 }) } as const);
    }
    for (let i = 0; i < 1500; i++) {
      ops.push({ type: 'putRetained', message: message(i + 1, { topic: `r/${i}`, expiresAt: now }) } as const);
    }
    await p.commit(ops);
    const result = await p.purgeExpired(now);
    assert.equal(result.sessions.length, 2500);
    assert.equal(new Set(result.sessions).size, 2500);
    assert.equal(result.messages, 1500);
    assert.deepEqual(await collect(p.loadSessions()), []);
    assert.deepEqual(await p.retainedStats(), { count: 0, bytes: 0 });
  });

  it('a store opened again on the same prefix sees what the first one committed', TIMEOUT, async (t) => {
    const prefix = newPrefix();
    const first = new RedisPersistence({ url: server.url, prefix });
    await first.open();
    await first.commit([
      { type: 'putSession', session: session('c') },
      { type: 'putRetained', message: message(5, { topic: 'r' }) },
    ]);
    await first.close();
    const second = await openStore(t, { url: server.url, prefix });
    assert.deepEqual(await second.getSession('c'), session('c'));
    assert.deepEqual(await second.getRetained('r'), message(5, { topic: 'r' }));
    assert.equal(await second.lastMessageId(), 5);
  });

  it('createPersistence builds the redis backend from the storage config, with its prefix and limits', TIMEOUT, async (t) => {
    const prefix = newPrefix();
    const p = createPersistence(
      storageSchema.parse({ backend: 'redis', redisUrl: server.url, redisPrefix: prefix, maxRetained: 1 }),
    );
    assert.ok(p instanceof RedisPersistence);
    assert.equal(p.prefix, prefix);
    await p.open();
    t.after(() => p.close());
    await p.commit([{ type: 'putRetained', message: message(1, { topic: 'a' }) }]);
    await assert.rejects(
      p.commit([{ type: 'putRetained', message: message(2, { topic: 'b' }) }]),
      rejectsWith('ERR_STORAGE_RETAINED_LIMIT'),
    );
    const redis = await rawClient(t, server.url);
    assert.equal(await redis.zcard(`${prefix}retained-index`), 1);
  });

  it('open refuses a prefix written by a newer key layout', TIMEOUT, async (t) => {
    const prefix = newPrefix();
    const redis = await rawClient(t, server.url);
    await redis.hset(`${prefix}meta`, 'format', 999);
    const p = new RedisPersistence({ url: server.url, prefix });
    await assert.rejects(p.open(), rejectsWith('ERR_STORAGE_OPEN'));
  });
});
