/**
 * The Persistence contract suite (P4): every backend runs it through
 * `persistenceContract(name, build)`. `build(opts)` returns a new, empty,
 * not yet opened store with the given retained limits; the suite opens it and
 * closes it after each test.
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { isTernError, type ErrorCode } from '../../src/errors.js';
import type { Persistence, StorageOp } from '../../src/persistence/persistence.js';
import type {
  OutboundEntry,
  SessionRecord,
  StoredMessage,
  StoredSubscription,
} from '../../src/persistence/types.js';
import { SESSION_NEVER_EXPIRES } from '../../src/persistence/types.js';
import { WriteQueue } from '../../src/persistence/write-queue.js';

export interface ContractOptions {
  maxRetained?: number;
  maxRetainedBytes?: number;
}

export type BuildPersistence = (opts: ContractOptions) => Promise<Persistence>;

const T0 = 1_700_000_000_000;
const TIMEOUT = { timeout: 20_000 };

export function session(clientId: string, over: Partial<SessionRecord> = {}): SessionRecord {
  return { clientId, protocolLevel: 5, expiryInterval: 3600, disconnectedAt: null, createdAt: T0, ...over };
}

export function message(id: number, over: Partial<StoredMessage> = {}): StoredMessage {
  return {
    id,
    topic: `t/${id}`,
    payload: Buffer.from(`payload ${id}`),
    qos: 1,
    retain: false,
    createdAt: T0 + id,
    ...over,
  };
}

export function entry(seq: number, messageId: number, over: Partial<OutboundEntry> = {}): OutboundEntry {
  return { seq, messageId, qos: 1, state: 'queued', ...over };
}

export function sub(filter: string, over: Partial<StoredSubscription> = {}): StoredSubscription {
  return { filter, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0, ...over };
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

function rejectsWith(code: ErrorCode): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isTernError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  };
}

/** Outbound for `clientId` of message `id` at `seq`, with the message in the same commit. */
function deliver(clientId: string, seq: number, m: StoredMessage, over: Partial<OutboundEntry> = {}): StorageOp[] {
  return [
    { type: 'putMessage', message: m },
    { type: 'putOutbound', clientId, entry: entry(seq, m.id, over) },
  ];
}

/** True if message `id` is no longer stored (a reference to it is refused). */
async function isCollected(p: Persistence, id: number): Promise<boolean> {
  const probe = `probe-${id}`;
  await p.commit([{ type: 'putSession', session: session(probe) }]);
  try {
    await p.commit([{ type: 'putOutbound', clientId: probe, entry: entry(1, id) }]);
  } catch (err) {
    assert.ok(isTernError(err, 'ERR_STORAGE_INVALID_OP'), String(err));
    return true;
  } finally {
    await p.commit([{ type: 'deleteSession', clientId: probe }]);
  }
  return false;
}

export function persistenceContract(name: string, build: BuildPersistence): void {
  async function fresh(t: TestContext, opts: ContractOptions = {}): Promise<Persistence> {
    const p = await build(opts);
    await p.open();
    t.after(() => p.close());
    return p;
  }

  describe(`${name}: persistence contract`, () => {
    describe('sessions', () => {
      it('a new store is empty', TIMEOUT, async (t) => {
        const p = await fresh(t);
        assert.equal(await p.lastMessageId(), 0);
        assert.deepEqual(await collect(p.loadSessions()), []);
        assert.deepEqual(await collect(p.loadSubscriptions()), []);
        assert.equal(await p.getSession('a'), undefined);
        assert.deepEqual(await p.getSubscriptions('a'), []);
        assert.deepEqual(await p.loadOutbound('a'), []);
        assert.deepEqual(await p.loadInbound('a'), []);
        assert.deepEqual(await collect(p.matchRetained('#')), []);
        assert.deepEqual(await p.retainedStats(), { count: 0, bytes: 0 });
      });

      it('putSession round-trips every field, including a will with Buffer payload and properties, and the username', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const withWill = session('with-will', {
          protocolLevel: 5,
          expiryInterval: 120,
          disconnectedAt: T0 + 5000,
          will: {
            topic: 'clients/with-will/status',
            payload: Buffer.from([0, 1, 0xfe, 0xff]),
            qos: 2,
            retain: true,
            delayInterval: 30,
            properties: {
              contentType: 'application/octet-stream',
              correlationData: Buffer.from([0xde, 0xad, 0x00, 0xbe, 0xef]),
              payloadFormatIndicator: 0,
              messageExpiryInterval: 60,
              responseTopic: 'reply/here',
              userProperties: [
                ['k', 'v1'],
                ['k', 'v2'],
                ['other', ''],
              ],
            },
          },
        });
        const plain = session('plain', { protocolLevel: 4, expiryInterval: SESSION_NEVER_EXPIRES, username: 'alice' });
        const v3 = session('v3', { protocolLevel: 3, expiryInterval: 0, will: {
          topic: 'w', payload: Buffer.alloc(0), qos: 0, retain: false, delayInterval: 0 } });
        await p.commit([
          { type: 'putSession', session: withWill },
          { type: 'putSession', session: plain },
          { type: 'putSession', session: v3 },
        ]);
        assert.deepEqual(await p.getSession('with-will'), withWill);
        assert.deepEqual(await p.getSession('plain'), plain);
        assert.deepEqual(await p.getSession('v3'), v3);
        const all = await collect(p.loadSessions());
        assert.deepEqual(
          all.sort((a, b) => a.clientId.localeCompare(b.clientId)),
          [plain, v3, withWill],
        );
      });

      it('putSession upserts by client id and keeps the session\'s subscriptions, outbound and inbound', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([
          { type: 'putSession', session: session('c', { username: 'bob', will: {
            topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false, delayInterval: 5 } }) },
          { type: 'putSubscription', clientId: 'c', subscription: sub('a/#') },
          ...deliver('c', 1, message(1)),
          { type: 'putInbound', clientId: 'c', packetId: 7 },
        ]);
        const updated = session('c', { disconnectedAt: T0 + 1, expiryInterval: 10 });
        await p.commit([{ type: 'putSession', session: updated }]);
        assert.deepEqual(await p.getSession('c'), updated, 'the will and the username are gone with the new record');
        assert.deepEqual(await p.getSubscriptions('c'), [sub('a/#')]);
        assert.equal((await p.loadOutbound('c')).length, 1);
        assert.deepEqual(await p.loadInbound('c'), [7]);
      });

      it('loadSessions streams every session (more than a page)', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const ops: StorageOp[] = [];
        for (let i = 0; i < 1200; i++) ops.push({ type: 'putSession', session: session(`c${i}`) });
        await p.commit(ops);
        const ids = (await collect(p.loadSessions())).map((s) => s.clientId);
        assert.equal(ids.length, 1200);
        assert.equal(new Set(ids).size, 1200);
      });

      it('loaders tolerate commits while they are being iterated', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const ops: StorageOp[] = [];
        for (let i = 0; i < 1200; i++) {
          ops.push({ type: 'putSession', session: session(`c${String(i).padStart(4, '0')}`) });
          ops.push({ type: 'putRetained', message: message(i + 1, { topic: `r/${i}` }) });
        }
        await p.commit(ops);
        const seen = new Set<string>();
        let n = 0;
        for await (const s of p.loadSessions()) {
          seen.add(s.clientId);
          if (n++ % 100 === 0) {
            await p.commit([
              { type: 'putSession', session: session(`new-${n}`) },
              { type: 'putRetained', message: message(10_000 + n, { topic: `r/new/${n}` }) },
            ]);
          }
        }
        for (let i = 0; i < 1200; i++) assert.ok(seen.has(`c${String(i).padStart(4, '0')}`));
        let retained = 0;
        for await (const _ of p.matchRetained('r/+')) {
          if (retained++ % 100 === 0) await p.commit([{ type: 'deleteRetained', topic: `r/new/${retained}` }]);
        }
        assert.ok(retained >= 1200, `${retained} retained seen`);
      });
    });

    describe('subscriptions', () => {
      it('putSubscription upserts by filter and round-trips every option; deleteSubscription removes one', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const shared = sub('$share/group/sensors/+', { qos: 0 });
        const full = sub('a/+/c', { qos: 2, noLocal: true, retainAsPublished: true, retainHandling: 2, subscriptionId: 268435455 });
        await p.commit([
          { type: 'putSession', session: session('c') },
          { type: 'putSubscription', clientId: 'c', subscription: sub('a/+/c') },
          { type: 'putSubscription', clientId: 'c', subscription: shared },
          { type: 'putSubscription', clientId: 'c', subscription: sub('gone') },
        ]);
        await p.commit([
          { type: 'putSubscription', clientId: 'c', subscription: full },
          { type: 'deleteSubscription', clientId: 'c', filter: 'gone' },
          { type: 'deleteSubscription', clientId: 'c', filter: 'never-there' },
        ]);
        const subs = (await p.getSubscriptions('c')).sort((a, b) => a.filter.localeCompare(b.filter));
        assert.deepEqual(subs, [shared, full].sort((a, b) => a.filter.localeCompare(b.filter)));
      });

      it('loadSubscriptions streams every client\'s subscriptions (more than a page)', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const ops: StorageOp[] = [];
        const expected = new Set<string>();
        for (let i = 0; i < 400; i++) {
          ops.push({ type: 'putSession', session: session(`c${i}`) });
          for (const f of ['x/#', `own/${i}`]) {
            ops.push({ type: 'putSubscription', clientId: `c${i}`, subscription: sub(f, { subscriptionId: i + 1 }) });
            expected.add(`c${i} ${f} ${i + 1}`);
          }
        }
        await p.commit(ops);
        const got = (await collect(p.loadSubscriptions())).map(
          (s) => `${s.clientId} ${s.subscription.filter} ${s.subscription.subscriptionId}`,
        );
        assert.equal(got.length, 800);
        assert.deepEqual(new Set(got), expected);
      });
    });

    describe('messages and outbound', () => {
      it('loadOutbound returns entries ordered by seq, with their messages and optional fields', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }]);
        const entries: Record<number, OutboundEntry> = {
          5: entry(5, 5, { qos: 2, state: 'pubrel', packetId: 65535 }),
          1: entry(1, 1, { qos: 0 }),
          10: entry(10, 10, { subscriptionIds: [1, 268435455], retain: true }),
          3: entry(3, 3, { state: 'sent', packetId: 1, retain: false }),
          2: entry(2, 2, { subscriptionIds: [] }),
        };
        for (const seq of [5, 1, 10, 3, 2]) {
          await p.commit([
            { type: 'putMessage', message: message(seq) },
            { type: 'putOutbound', clientId: 'c', entry: entries[seq]! },
          ]);
        }
        const loaded = await p.loadOutbound('c');
        assert.deepEqual(
          loaded.map((o) => o.entry.seq),
          [1, 2, 3, 5, 10],
        );
        for (const o of loaded) {
          assert.deepEqual(o.entry, entries[o.entry.seq]);
          assert.deepEqual(o.message, message(o.entry.seq));
        }
      });

      it('loadAllOutbound / loadAllInbound (optional) stream what loadOutbound / loadInbound give per client, over several pages', TIMEOUT, async (t) => {
        const p = await fresh(t);
        if (p.loadAllOutbound === undefined || p.loadAllInbound === undefined) {
          assert.equal(p.loadAllOutbound, p.loadAllInbound, 'both or neither');
          return;
        }
        const ops: StorageOp[] = [];
        const shared = message(1, { topic: 'fan/out' });
        let id = 1;
        for (let c = 0; c < 600; c++) {
          const clientId = `c${String(c).padStart(3, '0')}`;
          ops.push({ type: 'putSession', session: session(clientId) });
          if (c % 3 === 0) continue; // no outbound at all
          ops.push(...deliver(clientId, 7, shared, { state: 'sent', packetId: 7 }));
          for (let seq = 9; seq > 9 - (c % 4); seq--) ops.push(...deliver(clientId, seq, message(++id)));
          if (c % 2 === 0) for (const packetId of [100 + c, 5, 9]) ops.push({ type: 'putInbound', clientId, packetId });
        }
        await p.commit(ops);
        const all = await collect(p.loadAllOutbound());
        const inbound = await collect(p.loadAllInbound());
        const byClient = new Map<string, typeof all>();
        for (const row of all) {
          const list = byClient.get(row.clientId) ?? [];
          if (list.length === 0) byClient.set(row.clientId, list);
          else assert.equal(all[all.indexOf(row) - 1]!.clientId, row.clientId, 'one client\'s entries come together');
          list.push(row);
        }
        let rows = 0;
        for (const s of await collect(p.loadSessions())) {
          const expected = await p.loadOutbound(s.clientId);
          rows += expected.length;
          assert.deepEqual(
            (byClient.get(s.clientId) ?? []).map((r) => ({ entry: r.entry, message: r.message })),
            expected,
            s.clientId,
          );
          assert.deepEqual(
            inbound.filter((r) => r.clientId === s.clientId).map((r) => r.packetId),
            await p.loadInbound(s.clientId),
          );
        }
        assert.equal(all.length, rows);
        assert.ok(rows > 600, `${rows} rows`);
        assert.equal(inbound.length, 600);
      });

      it('putOutbound upserts by seq (queued -> sent -> pubrel); deleteOutbound removes one', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([
          { type: 'putSession', session: session('c') },
          ...deliver('c', 1, message(1), { qos: 2 }),
          ...deliver('c', 2, message(2)),
        ]);
        await p.commit([{ type: 'putOutbound', clientId: 'c', entry: entry(1, 1, { qos: 2, state: 'sent', packetId: 9 }) }]);
        assert.deepEqual((await p.loadOutbound('c'))[0]!.entry, entry(1, 1, { qos: 2, state: 'sent', packetId: 9 }));
        await p.commit([{ type: 'putOutbound', clientId: 'c', entry: entry(1, 1, { qos: 2, state: 'pubrel', packetId: 9 }) }]);
        assert.deepEqual((await p.loadOutbound('c'))[0]!.entry, entry(1, 1, { qos: 2, state: 'pubrel', packetId: 9 }));
        await p.commit([
          { type: 'deleteOutbound', clientId: 'c', seq: 1 },
          { type: 'deleteOutbound', clientId: 'c', seq: 99 },
          { type: 'deleteOutbound', clientId: 'nobody', seq: 1 },
        ]);
        assert.deepEqual(
          (await p.loadOutbound('c')).map((o) => o.entry.seq),
          [2],
        );
      });

      it('putOutbound can move an entry to another message; the old one is collected', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }, ...deliver('c', 1, message(1))]);
        await p.commit(deliver('c', 1, message(2)));
        assert.deepEqual((await p.loadOutbound('c'))[0]!.message, message(2));
        assert.equal(await isCollected(p, 1), true);
        assert.equal(await isCollected(p, 2), false);
      });

      it('a message is stored once, shared by many outbound entries, and collected after the last one goes', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const m = message(1);
        await p.commit([
          { type: 'putMessage', message: m },
          ...['a', 'b', 'c'].flatMap((c, i): StorageOp[] => [
            { type: 'putSession', session: session(c) },
            { type: 'putOutbound', clientId: c, entry: entry(i + 1, 1) },
          ]),
        ]);
        for (const c of ['a', 'b', 'c']) assert.deepEqual((await p.loadOutbound(c))[0]!.message, m);
        await p.commit([
          { type: 'deleteOutbound', clientId: 'a', seq: 1 },
          { type: 'deleteOutbound', clientId: 'b', seq: 2 },
        ]);
        assert.deepEqual((await p.loadOutbound('c'))[0]!.message, m);
        assert.equal(await isCollected(p, 1), false);
        await p.commit([{ type: 'deleteOutbound', clientId: 'c', seq: 3 }]);
        assert.equal(await isCollected(p, 1), true);
      });

      it('a message nothing references is collected when its commit ends', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }, { type: 'putMessage', message: message(1) }]);
        await assert.rejects(
          p.commit([{ type: 'putOutbound', clientId: 'c', entry: entry(1, 1) }]),
          rejectsWith('ERR_STORAGE_INVALID_OP'),
        );
      });

      it('putMessage of an id already stored keeps the stored copy (messages are immutable)', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }, ...deliver('c', 1, message(1))]);
        await p.commit(deliver('c', 2, message(1, { payload: Buffer.from('other') })));
        const loaded = await p.loadOutbound('c');
        assert.deepEqual(
          loaded.map((o) => o.message),
          [message(1), message(1)],
        );
      });

      it('message payloads and properties round-trip byte for byte, Buffers included', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const rich = message(1, {
          topic: 'a/ü/🐦',
          payload: Buffer.from([0x00, 0xff, 0x10, 0x80, 0x00]),
          qos: 2,
          retain: true,
          expiresAt: T0 + 60_000,
          properties: {
            payloadFormatIndicator: 1,
            messageExpiryInterval: 60,
            contentType: 'text/plain; charset=utf-8',
            responseTopic: 'reply/1',
            correlationData: Buffer.from([0x00, 0x01, 0xff]),
            subscriptionIdentifiers: [3, 1],
            userProperties: [
              ['b', '2'],
              ['a', '1'],
              ['b', '2'],
              ['$b', '{"$b":"AAAA"}'],
            ],
          },
        });
        const empty = message(2, { payload: Buffer.alloc(0), qos: 0 });
        const emptyProps = message(3, { properties: {} });
        await p.commit([
          { type: 'putSession', session: session('c') },
          ...deliver('c', 1, rich),
          ...deliver('c', 2, empty),
          ...deliver('c', 3, emptyProps),
        ]);
        const loaded = await p.loadOutbound('c');
        assert.deepEqual(loaded.map((o) => o.message), [rich, empty, emptyProps]);
        assert.ok(Buffer.isBuffer(loaded[0]!.message.properties!.correlationData));
        assert.ok(Buffer.isBuffer(loaded[1]!.message.payload));
      });

      it('lastMessageId is the highest id ever stored, even after that message is collected', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }, ...deliver('c', 1, message(7)), ...deliver('c', 2, message(3))]);
        assert.equal(await p.lastMessageId(), 7);
        await p.commit([{ type: 'putRetained', message: message(12, { topic: 'r' }) }]);
        assert.equal(await p.lastMessageId(), 12);
        await p.commit([
          { type: 'deleteOutbound', clientId: 'c', seq: 1 },
          { type: 'deleteRetained', topic: 'r' },
        ]);
        assert.equal(await isCollected(p, 12), true);
        assert.equal(await p.lastMessageId(), 12);
      });
    });

    describe('inbound', () => {
      it('putInbound/deleteInbound keep QoS 2 packet ids awaiting PUBREL, loaded ascending', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([
          { type: 'putSession', session: session('c') },
          { type: 'putSession', session: session('d') },
          { type: 'putInbound', clientId: 'c', packetId: 300 },
          { type: 'putInbound', clientId: 'c', packetId: 2 },
          { type: 'putInbound', clientId: 'c', packetId: 65535 },
          { type: 'putInbound', clientId: 'c', packetId: 2 },
          { type: 'putInbound', clientId: 'd', packetId: 2 },
        ]);
        assert.deepEqual(await p.loadInbound('c'), [2, 300, 65535]);
        await p.commit([
          { type: 'deleteInbound', clientId: 'c', packetId: 300 },
          { type: 'deleteInbound', clientId: 'c', packetId: 1 },
        ]);
        assert.deepEqual(await p.loadInbound('c'), [2, 65535]);
        assert.deepEqual(await p.loadInbound('d'), [2]);
      });
    });

    describe('cascade and validity', () => {
      it('deleteSession deletes its subscriptions, outbound and inbound, and collects messages only it used', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const own = message(1);
        const sharedMsg = message(2);
        await p.commit([
          { type: 'putSession', session: session('gone') },
          { type: 'putSession', session: session('stays') },
          { type: 'putSubscription', clientId: 'gone', subscription: sub('a') },
          { type: 'putSubscription', clientId: 'stays', subscription: sub('a') },
          ...deliver('gone', 1, own),
          ...deliver('gone', 2, sharedMsg),
          ...deliver('stays', 1, sharedMsg),
          { type: 'putInbound', clientId: 'gone', packetId: 5 },
          { type: 'putInbound', clientId: 'stays', packetId: 5 },
        ]);
        await p.commit([{ type: 'deleteSession', clientId: 'gone' }, { type: 'deleteSession', clientId: 'never' }]);
        assert.equal(await p.getSession('gone'), undefined);
        assert.deepEqual(await p.getSubscriptions('gone'), []);
        assert.deepEqual(await p.loadOutbound('gone'), []);
        assert.deepEqual(await p.loadInbound('gone'), []);
        assert.deepEqual(
          (await collect(p.loadSubscriptions())).map((s) => s.clientId),
          ['stays'],
        );
        assert.deepEqual((await p.loadOutbound('stays'))[0]!.message, sharedMsg);
        assert.deepEqual(await p.loadInbound('stays'), [5]);
        assert.equal(await isCollected(p, 1), true);
        assert.equal(await isCollected(p, 2), false);
        // A session put again starts empty.
        await p.commit([{ type: 'putSession', session: session('gone') }]);
        assert.deepEqual(await p.getSubscriptions('gone'), []);
      });

      for (const op of [
        { type: 'putSubscription', clientId: 'ghost', subscription: sub('a') },
        { type: 'putInbound', clientId: 'ghost', packetId: 1 },
        { type: 'putOutbound', clientId: 'ghost', entry: entry(1, 1) },
      ] satisfies StorageOp[]) {
        it(`${op.type} for a client without a session is rejected with ERR_STORAGE_INVALID_OP`, TIMEOUT, async (t) => {
          const p = await fresh(t);
          await assert.rejects(
            p.commit([{ type: 'putMessage', message: message(1) }, op]),
            rejectsWith('ERR_STORAGE_INVALID_OP'),
          );
        });
      }

      it('putOutbound of an unknown message is rejected with ERR_STORAGE_INVALID_OP', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([{ type: 'putSession', session: session('c') }]);
        await assert.rejects(
          p.commit([{ type: 'putOutbound', clientId: 'c', entry: entry(1, 42) }]),
          rejectsWith('ERR_STORAGE_INVALID_OP'),
        );
      });

      it('a commit with an invalid op applies nothing (atomic)', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit([
          { type: 'putSession', session: session('old') },
          { type: 'putSubscription', clientId: 'old', subscription: sub('keep') },
          { type: 'putRetained', message: message(1, { topic: 'r/old' }) },
        ]);
        const before = {
          last: await p.lastMessageId(),
          stats: await p.retainedStats(),
        };
        await assert.rejects(
          p.commit([
            { type: 'putSession', session: session('new') },
            { type: 'putSubscription', clientId: 'new', subscription: sub('x') },
            ...deliver('new', 1, message(50)),
            { type: 'putInbound', clientId: 'new', packetId: 1 },
            { type: 'putRetained', message: message(51, { topic: 'r/new' }) },
            { type: 'deleteRetained', topic: 'r/old' },
            { type: 'deleteSubscription', clientId: 'old', filter: 'keep' },
            { type: 'deleteSession', clientId: 'old' },
            { type: 'putOutbound', clientId: 'new', entry: entry(2, 999) },
          ]),
          rejectsWith('ERR_STORAGE_INVALID_OP'),
        );
        assert.equal(await p.getSession('new'), undefined);
        assert.deepEqual(await p.getSession('old'), session('old'));
        assert.deepEqual(await p.getSubscriptions('old'), [sub('keep')]);
        assert.deepEqual(await p.loadOutbound('new'), []);
        assert.deepEqual(await p.loadInbound('new'), []);
        assert.equal(await p.getRetained('r/new'), undefined);
        assert.deepEqual(await p.getRetained('r/old'), message(1, { topic: 'r/old' }));
        assert.equal(await p.lastMessageId(), before.last);
        assert.deepEqual(await p.retainedStats(), before.stats);
        assert.equal(await isCollected(p, 50), true);
      });

      it('ops within one commit apply in order', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const last = session('c', { createdAt: T0 + 2 });
        await p.commit([
          { type: 'putSession', session: session('c') },
          { type: 'putSubscription', clientId: 'c', subscription: sub('f', { qos: 0 }) },
          { type: 'deleteSession', clientId: 'c' },
          { type: 'putSession', session: last },
          { type: 'putSubscription', clientId: 'c', subscription: sub('f', { qos: 1 }) },
          { type: 'putSubscription', clientId: 'c', subscription: sub('f', { qos: 2 }) },
          { type: 'putRetained', message: message(1, { topic: 'r' }) },
          { type: 'deleteRetained', topic: 'r' },
          { type: 'putRetained', message: message(2, { topic: 'r' }) },
        ]);
        assert.deepEqual(await p.getSession('c'), last);
        assert.deepEqual(await p.getSubscriptions('c'), [sub('f', { qos: 2 })]);
        assert.deepEqual(await p.getRetained('r'), message(2, { topic: 'r' }));
      });

      it('records are copies: mutating what was committed or loaded does not change the store', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const s = session('c');
        const m = message(1, { properties: { userProperties: [['a', '1']], subscriptionIdentifiers: [1] } });
        const e = entry(1, 1, { subscriptionIds: [4] });
        await p.commit([
          { type: 'putSession', session: s },
          { type: 'putMessage', message: m },
          { type: 'putOutbound', clientId: 'c', entry: e },
          { type: 'putRetained', message: message(2, { topic: 'r', properties: { userProperties: [['x', 'y']] } }) },
        ]);
        s.expiryInterval = 1;
        m.properties!.userProperties![0]![1] = 'changed';
        m.properties!.subscriptionIdentifiers!.push(2);
        e.subscriptionIds!.push(5);
        e.state = 'sent';
        const loaded = await p.loadOutbound('c');
        loaded[0]!.entry.seq = 99;
        (await p.getRetained('r'))!.properties!.userProperties!.push(['z', 'z']);
        assert.equal((await p.getSession('c'))!.expiryInterval, 3600);
        const again = (await p.loadOutbound('c'))[0]!;
        assert.deepEqual(again.entry, entry(1, 1, { subscriptionIds: [4] }));
        assert.deepEqual(again.message.properties, { userProperties: [['a', '1']], subscriptionIdentifiers: [1] });
        assert.deepEqual((await p.getRetained('r'))!.properties, { userProperties: [['x', 'y']] });
      });

      it('every method rejects with ERR_STORAGE_CLOSED after close', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.close();
        const closed = rejectsWith('ERR_STORAGE_CLOSED');
        await assert.rejects(p.commit([{ type: 'putSession', session: session('c') }]), closed);
        await assert.rejects(p.lastMessageId(), closed);
        await assert.rejects(p.getSession('c'), closed);
        await assert.rejects(collect(p.loadSessions()), closed);
        await assert.rejects(collect(p.loadSubscriptions()), closed);
        await assert.rejects(p.getSubscriptions('c'), closed);
        await assert.rejects(p.loadOutbound('c'), closed);
        await assert.rejects(p.loadInbound('c'), closed);
        await assert.rejects(collect(p.matchRetained('#')), closed);
        await assert.rejects(p.getRetained('t'), closed);
        await assert.rejects(p.retainedStats(), closed);
        await assert.rejects(p.purgeExpired(T0), closed);
        await p.close();
      });
    });

    describe('retained', () => {
      it('putRetained upserts by topic; deleteRetained removes; stats count messages and payload bytes', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const a1 = message(1, { topic: 'a', payload: Buffer.alloc(10), retain: true });
        const b = message(2, { topic: 'b', payload: Buffer.alloc(5), retain: true, properties: { correlationData: Buffer.from([1]) } });
        await p.commit([{ type: 'putRetained', message: a1 }, { type: 'putRetained', message: b }]);
        assert.deepEqual(await p.retainedStats(), { count: 2, bytes: 15 });
        assert.deepEqual(await p.getRetained('a'), a1);
        assert.deepEqual(await p.getRetained('b'), b);
        const a2 = message(3, { topic: 'a', payload: Buffer.alloc(3) });
        await p.commit([{ type: 'putRetained', message: a2 }]);
        assert.deepEqual(await p.getRetained('a'), a2);
        assert.deepEqual(await p.retainedStats(), { count: 2, bytes: 8 });
        assert.equal(await isCollected(p, 1), true, 'the replaced retained message is collected');
        await p.commit([{ type: 'deleteRetained', topic: 'b' }, { type: 'deleteRetained', topic: 'none' }]);
        assert.equal(await p.getRetained('b'), undefined);
        assert.deepEqual(await p.retainedStats(), { count: 1, bytes: 3 });
        assert.equal(await isCollected(p, 2), true);
      });

      const TOPICS = [
        'a', 'a/b', 'a/b/c', 'a/c', 'a//b', 'ab', 'ab/c', '/a', 'x/y', 'ü/ß',
        '$SYS/uptime', '$SYS/a/b', '$share-like', 'sport/tennis/player1',
      ];
      const CASES: Array<[string, string[]]> = [
        ['a', ['a']],
        ['a/b', ['a/b']],
        ['missing', []],
        ['a/+', ['a/b', 'a/c']],
        ['a/#', ['a', 'a//b', 'a/b', 'a/b/c', 'a/c']], // [MQTT-4.7.1-2] `#` matches the parent level
        ['a/+/c', ['a/b/c']],
        ['a/+/b', ['a//b']],
        ['+/a', ['/a']],
        ['+', ['a', 'ab']], // [MQTT-4.7.2-1] not `$SYS/...`, not `$share-like`
        ['+/+', ['/a', 'a/b', 'a/c', 'ab/c', 'x/y', 'ü/ß']],
        ['#', ['/a', 'a', 'a//b', 'a/b', 'a/b/c', 'a/c', 'ab', 'ab/c', 'sport/tennis/player1', 'x/y', 'ü/ß']],
        ['+/uptime', []], // [MQTT-4.7.2-1]
        ['$SYS/#', ['$SYS/a/b', '$SYS/uptime']],
        ['$SYS/+', ['$SYS/uptime']],
        ['$SYS/+/b', ['$SYS/a/b']],
        ['sport/+/player1', ['sport/tennis/player1']],
        ['sport/tennis/#', ['sport/tennis/player1']],
        ['ü/#', ['ü/ß']],
        ['a/b/c/#', ['a/b/c']],
        ['nomatch/#', []],
      ];
      it('matchRetained matches +, # and exact filters, and keeps $ topics from leading wildcards', TIMEOUT, async (t) => {
        const p = await fresh(t);
        await p.commit(TOPICS.map((topic, i) => ({ type: 'putRetained', message: message(i + 1, { topic }) })));
        for (const [filter, expected] of CASES) {
          const got = (await collect(p.matchRetained(filter))).map((m) => m.topic).sort();
          assert.deepEqual(got, [...expected].sort(), `filter ${filter}`);
        }
        const [one] = await collect(p.matchRetained('x/+'));
        assert.deepEqual(one, message(TOPICS.indexOf('x/y') + 1, { topic: 'x/y' }));
      });

      it('matchRetained finds every match among many retained messages (more than a page)', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const ops: StorageOp[] = [];
        for (let i = 0; i < 1500; i++) ops.push({ type: 'putRetained', message: message(i + 1, { topic: `big/${i}/v` }) });
        ops.push({ type: 'putRetained', message: message(5000, { topic: 'bigger/0/v' }) });
        ops.push({ type: 'putRetained', message: message(5001, { topic: 'big/0/w' }) });
        await p.commit(ops);
        assert.equal((await collect(p.matchRetained('big/+/v'))).length, 1500);
        assert.equal((await collect(p.matchRetained('big/#'))).length, 1501);
        assert.equal((await collect(p.matchRetained('+/0/+'))).length, 3);
        const bytes = ops.reduce((n, op) => n + (op.type === 'putRetained' ? op.message.payload.length : 0), 0);
        assert.deepEqual(await p.retainedStats(), { count: 1502, bytes });
      });

      it('a retained message shared with outbound entries stays until both let go', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const m = message(1, { topic: 'r', retain: true });
        await p.commit([
          { type: 'putSession', session: session('c') },
          { type: 'putRetained', message: m },
          { type: 'putOutbound', clientId: 'c', entry: entry(1, 1, { retain: true }) },
        ]);
        await p.commit([{ type: 'deleteRetained', topic: 'r' }]);
        assert.deepEqual((await p.loadOutbound('c'))[0]!.message, m);
        await p.commit([{ type: 'putRetained', message: m }]);
        await p.commit([{ type: 'deleteOutbound', clientId: 'c', seq: 1 }]);
        assert.deepEqual(await p.getRetained('r'), m);
        await p.commit([{ type: 'deleteRetained', topic: 'r' }]);
        assert.equal(await isCollected(p, 1), true);
      });

      it('maxRetained refuses a new topic past the limit (ERR_STORAGE_RETAINED_LIMIT), applying nothing', TIMEOUT, async (t) => {
        const p = await fresh(t, { maxRetained: 2 });
        await p.commit([
          { type: 'putRetained', message: message(1, { topic: 'a' }) },
          { type: 'putRetained', message: message(2, { topic: 'b' }) },
        ]);
        await assert.rejects(
          p.commit([{ type: 'putSession', session: session('z') }, { type: 'putRetained', message: message(3, { topic: 'c' }) }]),
          rejectsWith('ERR_STORAGE_RETAINED_LIMIT'),
        );
        assert.equal(await p.getSession('z'), undefined);
        assert.equal(await p.getRetained('c'), undefined);
        // Replacing an existing topic does not grow the count.
        await p.commit([{ type: 'putRetained', message: message(4, { topic: 'a' }) }]);
        // Deleting first makes room, within the same commit.
        await p.commit([
          { type: 'deleteRetained', topic: 'b' },
          { type: 'putRetained', message: message(5, { topic: 'c' }) },
        ]);
        assert.deepEqual(
          (await collect(p.matchRetained('#'))).map((m) => m.topic).sort(),
          ['a', 'c'],
        );
        assert.deepEqual(await p.retainedStats(), { count: 2, bytes: message(4).payload.length + message(5).payload.length });
      });

      it('maxRetainedBytes refuses growth past the byte limit; a smaller replacement always succeeds', TIMEOUT, async (t) => {
        const p = await fresh(t, { maxRetainedBytes: 10 });
        const bytes = (id: number, topic: string, n: number): StoredMessage => message(id, { topic, payload: Buffer.alloc(n) });
        await p.commit([{ type: 'putRetained', message: bytes(1, 'a', 6) }]);
        await p.commit([{ type: 'putRetained', message: bytes(2, 'a', 10) }]);
        await assert.rejects(
          p.commit([{ type: 'putRetained', message: bytes(3, 'b', 1) }]),
          rejectsWith('ERR_STORAGE_RETAINED_LIMIT'),
        );
        await assert.rejects(
          p.commit([{ type: 'putRetained', message: bytes(4, 'a', 11) }]),
          rejectsWith('ERR_STORAGE_RETAINED_LIMIT'),
        );
        await p.commit([{ type: 'putRetained', message: bytes(5, 'a', 3) }]);
        await p.commit([{ type: 'putRetained', message: bytes(6, 'b', 7) }]);
        assert.deepEqual(await p.retainedStats(), { count: 2, bytes: 10 });
      });
    });

    describe('expiry', () => {
      it('purgeExpired deletes sessions whose expiry passed, with all their data, and no others', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const now = T0 + 100_000;
        const sessions = [
          session('boundary', { disconnectedAt: now - 10_000, expiryInterval: 10 }), // expires exactly now
          session('zero', { disconnectedAt: now - 1, expiryInterval: 0 }),
          session('later', { disconnectedAt: now - 10_000, expiryInterval: 11 }),
          session('never', { disconnectedAt: T0 - 1e12, expiryInterval: SESSION_NEVER_EXPIRES }),
          session('connected', { disconnectedAt: null, expiryInterval: 0 }),
        ];
        await p.commit([
          ...sessions.map((s): StorageOp => ({ type: 'putSession', session: s })),
          { type: 'putSubscription', clientId: 'boundary', subscription: sub('a') },
          ...deliver('boundary', 1, message(1)),
          ...deliver('later', 1, message(2)),
          { type: 'putOutbound', clientId: 'boundary', entry: entry(2, 2) },
          { type: 'putInbound', clientId: 'boundary', packetId: 1 },
        ]);
        const result = await p.purgeExpired(now);
        assert.deepEqual(result.sessions.sort(), ['boundary', 'zero']);
        assert.equal(result.messages, 0);
        assert.deepEqual(
          (await collect(p.loadSessions())).map((s) => s.clientId).sort(),
          ['connected', 'later', 'never'],
        );
        assert.deepEqual(await p.getSubscriptions('boundary'), []);
        assert.deepEqual(await p.loadOutbound('boundary'), []);
        assert.deepEqual(await p.loadInbound('boundary'), []);
        assert.equal(await isCollected(p, 1), true);
        assert.equal(await isCollected(p, 2), false);
        assert.deepEqual(await p.purgeExpired(now), { sessions: [], messages: 0 });
        assert.deepEqual((await p.purgeExpired(now + 1000)).sessions, ['later']);
      });

      it('purgeExpired drops queued entries and retained slots whose message expired, keeping sent ones', TIMEOUT, async (t) => {
        const p = await fresh(t);
        const now = T0 + 50_000;
        const expired = message(1, { expiresAt: now });
        const fresh2 = message(2, { expiresAt: now + 1 });
        const forever = message(3);
        await p.commit([
          { type: 'putSession', session: session('a') },
          { type: 'putSession', session: session('b') },
          ...deliver('a', 1, expired),
          ...deliver('a', 2, expired, { state: 'sent', packetId: 1 }),
          ...deliver('a', 3, fresh2),
          ...deliver('a', 4, forever),
          ...deliver('a', 5, expired, { qos: 2, state: 'pubrel', packetId: 2 }),
          ...deliver('b', 1, expired),
          { type: 'putRetained', message: message(4, { topic: 'r/old', expiresAt: now - 1 }) },
          { type: 'putRetained', message: message(5, { topic: 'r/new', expiresAt: now + 1 }) },
          { type: 'putRetained', message: message(6, { topic: 'r/forever' }) },
        ]);
        const result = await p.purgeExpired(now);
        assert.deepEqual(result, { sessions: [], messages: 3 });
        assert.deepEqual(
          (await p.loadOutbound('a')).map((o) => o.entry.seq),
          [2, 3, 4, 5],
        );
        assert.deepEqual(await p.loadOutbound('b'), []);
        assert.equal(await p.getRetained('r/old'), undefined);
        assert.deepEqual(
          (await collect(p.matchRetained('r/#'))).map((m) => m.topic).sort(),
          ['r/forever', 'r/new'],
        );
        assert.deepEqual(await p.retainedStats(), { count: 2, bytes: message(5).payload.length + message(6).payload.length });
        assert.equal(await isCollected(p, 4), true);
        assert.deepEqual(await p.purgeExpired(now), { sessions: [], messages: 0 });
        // The sent copies finish their flow, then the message goes.
        await p.commit([
          { type: 'deleteOutbound', clientId: 'a', seq: 2 },
          { type: 'deleteOutbound', clientId: 'a', seq: 5 },
        ]);
        assert.equal(await isCollected(p, 1), true);
      });
    });

    describe('with a WriteQueue', () => {
      it('many concurrent submits land in few commits, in submit order', TIMEOUT, async (t) => {
        const p = await fresh(t);
        let commits = 0;
        const q = new WriteQueue({ commit: (ops) => (commits++, p.commit(ops)) }, { maxDelayMs: 5, maxOps: 10_000 });
        await q.submit([{ type: 'putSession', session: session('c') }]);
        commits = 0;
        const N = 300;
        const done: Array<Promise<void>> = [];
        for (let i = 1; i <= N; i++) {
          done.push(
            q.submit([
              ...deliver('c', i % 10, message(i)),
              { type: 'putSubscription', clientId: 'c', subscription: sub('f', { subscriptionId: i }) },
            ]),
          );
        }
        await Promise.all(done);
        assert.equal(commits, 1, 'submits made in one tick share one commit');
        const outbound = await p.loadOutbound('c');
        assert.deepEqual(
          outbound.map((o) => [o.entry.seq, o.message.id]),
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((seq) => [seq, N - 10 + (seq === 0 ? 10 : seq)]),
        );
        assert.deepEqual(await p.getSubscriptions('c'), [sub('f', { subscriptionId: N })]);
        assert.equal(await p.lastMessageId(), N);
      });

      it('one failing submission in a group fails alone; the others land', TIMEOUT, async (t) => {
        const p = await fresh(t, { maxRetained: 1 });
        const q = new WriteQueue(p, { maxDelayMs: 5 });
        const results = await Promise.allSettled([
          q.submit([{ type: 'putSession', session: session('a') }]),
          q.submit([{ type: 'putSession', session: session('bad') }, { type: 'putOutbound', clientId: 'bad', entry: entry(1, 404) }]),
          q.submit([{ type: 'putRetained', message: message(1, { topic: 'r/1' }) }]),
          q.submit([{ type: 'putRetained', message: message(2, { topic: 'r/2' }) }]),
          q.submit([{ type: 'putSession', session: session('c') }]),
        ]);
        assert.deepEqual(
          results.map((r) => r.status),
          ['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled'],
        );
        assert.ok(isTernError((results[1] as PromiseRejectedResult).reason, 'ERR_STORAGE_INVALID_OP'));
        assert.ok(isTernError((results[3] as PromiseRejectedResult).reason, 'ERR_STORAGE_RETAINED_LIMIT'));
        assert.deepEqual(
          (await collect(p.loadSessions())).map((s) => s.clientId).sort(),
          ['a', 'c'],
        );
        assert.deepEqual(await p.retainedStats(), { count: 1, bytes: message(1).payload.length });
      });
    });
  });
}
