import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { isTernError, type ErrorCode } from '../../src/errors.js';
import type { StorageOp } from '../../src/persistence/persistence.js';
import { DB_FILE, LOCK_FILE, SqlitePersistence, type SqlitePersistenceOptions } from '../../src/persistence/sqlite.js';
import { SCHEMA_VERSION } from '../../src/persistence/sqlite-schema.js';
import { SESSION_NEVER_EXPIRES } from '../../src/persistence/types.js';
import { collect, entry, message, persistenceContract, session, sub } from './contract.js';

const root = mkdtempSync(join(tmpdir(), 'tern-sqlite-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

let dirs = 0;
function newDir(): string {
  const dir = join(root, `store-${++dirs}`);
  mkdirSync(dir);
  return dir;
}

persistenceContract('sqlite', async (opts) => new SqlitePersistence({ path: newDir(), ...opts }));

const TIMEOUT = { timeout: 30_000 };
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const childScript = fileURLToPath(new URL('./fixtures/sqlite-child.ts', import.meta.url));

function rejectsWith(code: ErrorCode, text?: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isTernError(err, code), `expected ${code}, got ${String(err)}`);
    if (text !== undefined) assert.ok((err as Error).message.includes(text), `"${(err as Error).message}" names ${text}`);
    return true;
  };
}

async function openStore(t: TestContext, opts: SqlitePersistenceOptions): Promise<SqlitePersistence> {
  const p = new SqlitePersistence(opts);
  await p.open();
  t.after(() => p.close());
  return p;
}

/** Starts the fixture child; resolves with it once it printed `ready`. */
async function startChild(
  t: TestContext,
  dir: string,
  sessions: number,
  mode: 'hold' | 'kill',
): Promise<{ child: ChildProcess; pid: number; exited: Promise<[number | null, NodeJS.Signals | null]> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, dir, String(sessions), mode], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let out = '';
  const pid = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready (\d+)\n/.exec(out);
      if (m !== null) resolve(Number(m[1]));
    });
    void exited.then(([code, signal]) => {
      if (!/ready/.test(out)) reject(new Error(`child exited (${code ?? signal}) before ready: ${out}`));
    });
  });
  return { child, pid, exited };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('sqlite only', () => {
  it('reopening after close keeps every record, the message id high-water mark and retained stats', TIMEOUT, async (t) => {
    const dir = newDir();
    const p = new SqlitePersistence({ path: dir, durability: 'full' });
    await p.open();
    const s = session('c', {
      disconnectedAt: 5,
      expiryInterval: SESSION_NEVER_EXPIRES,
      will: {
        topic: 'w',
        payload: Buffer.from([0, 255]),
        qos: 1,
        retain: true,
        delayInterval: 3,
        properties: { correlationData: Buffer.from([9]) },
      },
    });
    const m = message(1, { properties: { userProperties: [['k', 'v']] }, expiresAt: 99 });
    await p.commit([
      { type: 'putSession', session: s },
      { type: 'putSubscription', clientId: 'c', subscription: sub('a/+', { subscriptionId: 3 }) },
      { type: 'putMessage', message: m },
      { type: 'putOutbound', clientId: 'c', entry: entry(4, 1, { state: 'sent', packetId: 8 }) },
      { type: 'putInbound', clientId: 'c', packetId: 12 },
      { type: 'putRetained', message: message(2, { topic: 'r/x', retain: true }) },
      { type: 'putRetained', message: message(40, { topic: 'r/gone' }) },
    ]);
    await p.commit([{ type: 'deleteRetained', topic: 'r/gone' }]);
    await p.close();

    const again = await openStore(t, { path: dir });
    assert.deepEqual(await again.getSession('c'), s);
    assert.deepEqual(await again.getSubscriptions('c'), [sub('a/+', { subscriptionId: 3 })]);
    assert.deepEqual(await again.loadOutbound('c'), [{ entry: entry(4, 1, { state: 'sent', packetId: 8 }), message: m }]);
    assert.deepEqual(await again.loadInbound('c'), [12]);
    assert.deepEqual(await collect(again.matchRetained('r/#')), [message(2, { topic: 'r/x', retain: true })]);
    assert.deepEqual(await again.retainedStats(), { count: 1, bytes: message(2).payload.length });
    assert.equal(await again.lastMessageId(), 40, 'collected message 40 still counts');
  });

  it('a second instance on the same directory is refused with ERR_STORAGE_LOCKED until the first closes', TIMEOUT, async (t) => {
    const dir = newDir();
    const first = new SqlitePersistence({ path: dir });
    await first.open();
    const second = new SqlitePersistence({ path: dir });
    await assert.rejects(second.open(), rejectsWith('ERR_STORAGE_LOCKED', join(dir, LOCK_FILE)));
    await first.close();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false, 'close removes the lock file');
    await second.open();
    t.after(() => second.close());
    await second.commit([{ type: 'putSession', session: session('c') }]);
  });

  it('a lock left by a process killed with SIGKILL is stale: the next open succeeds', TIMEOUT, async (t) => {
    const dir = newDir();
    const { pid, exited } = await startChild(t, dir, 1, 'kill');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');
    assert.equal(isAlive(pid), false);
    const lock = JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')) as { pid: number };
    assert.equal(lock.pid, pid, 'the killed child left its lock behind');
    const p = await openStore(t, { path: dir });
    assert.equal((await p.getSession('child-0'))?.clientId, 'child-0');
  });

  it('a live process holds the lock; everything it committed before being SIGKILLed is there', TIMEOUT, async (t) => {
    const dir = newDir();
    const N = 300;
    const { child, exited } = await startChild(t, dir, N, 'hold');
    await assert.rejects(new SqlitePersistence({ path: dir }).open(), rejectsWith('ERR_STORAGE_LOCKED', String(child.pid)));
    child.stdin!.write('die\n');
    const [, signal] = await exited;
    assert.equal(signal, 'SIGKILL');

    const p = await openStore(t, { path: dir });
    assert.equal((await collect(p.loadSessions())).length, N);
    assert.equal((await collect(p.loadSubscriptions())).length, N);
    assert.deepEqual(await p.retainedStats(), {
      count: N,
      bytes: Array.from({ length: N }, (_, i) => `m${i}`.length).reduce((a, b) => a + b, 0),
    });
    assert.equal(await p.lastMessageId(), N);
    for (const i of [0, 137, N - 1]) {
      const [o] = await p.loadOutbound(`child-${i}`);
      assert.equal(o?.message.payload.toString(), `m${i}`);
    }
  });

  it('a lock file naming this process but not held by it is stale (a restarted container reuses the pid)', TIMEOUT, async (t) => {
    const dir = newDir();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, startTime: null, host: 'old-life' }));
    await openStore(t, { path: dir });
  });

  it('a lock file whose pid now belongs to a process started at another time is stale', TIMEOUT, async (t) => {
    if (!existsSync(`/proc/${process.ppid}/stat`)) {
      t.skip('needs /proc (Linux)');
      return;
    }
    const dir = newDir();
    assert.ok(isAlive(process.ppid));
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, startTime: '1', host: 'h' }));
    await openStore(t, { path: dir });
  });

  it('a lock file held by a live process with a matching start time is not stale', TIMEOUT, async (t) => {
    if (!existsSync(`/proc/${process.ppid}/stat`)) {
      t.skip('needs /proc (Linux)');
      return;
    }
    const dir = newDir();
    const stat = readFileSync(`/proc/${process.ppid}/stat`, 'utf8');
    const startTime = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.ppid, startTime, host: 'h' }));
    await assert.rejects(new SqlitePersistence({ path: dir }).open(), rejectsWith('ERR_STORAGE_LOCKED', String(process.ppid)));
  });

  it('an unreadable (garbage) lock file is stale', TIMEOUT, async (t) => {
    const dir = newDir();
    writeFileSync(join(dir, LOCK_FILE), 'not json');
    await openStore(t, { path: dir });
  });

  const GARBAGE = Buffer.from('this is not an sqlite database, just bytes. '.repeat(200));

  it('a file that is not a database fails with ERR_STORAGE_CORRUPT naming it, and is left untouched', TIMEOUT, async () => {
    const dir = newDir();
    const file = join(dir, DB_FILE);
    writeFileSync(file, GARBAGE);
    await assert.rejects(new SqlitePersistence({ path: dir }).open(), rejectsWith('ERR_STORAGE_CORRUPT', file));
    assert.deepEqual(readFileSync(file), GARBAGE);
    assert.equal(existsSync(join(dir, LOCK_FILE)), false, 'a failed open releases the lock');
    assert.deepEqual(readdirSync(dir), [DB_FILE]);
  });

  it('repair moves a corrupt database and its -wal/-shm aside (never deleted) and starts empty', TIMEOUT, async (t) => {
    const dir = newDir();
    const file = join(dir, DB_FILE);
    writeFileSync(file, GARBAGE);
    writeFileSync(`${file}-wal`, 'wal bytes');
    writeFileSync(`${file}-shm`, 'shm bytes');
    const p = await openStore(t, { path: dir, repair: true });
    assert.deepEqual(await collect(p.loadSessions()), []);
    await p.commit([{ type: 'putSession', session: session('c') }]);
    const aside = readdirSync(dir).filter((f) => f.startsWith(`${DB_FILE}.corrupt-`)).sort();
    assert.equal(aside.length, 3, aside.join());
    const base = aside.find((f) => !f.endsWith('-wal') && !f.endsWith('-shm'))!;
    assert.match(base, /^tern\.db\.corrupt-\d{4}-\d\d-\d\dT[\d-]+Z$/);
    assert.deepEqual(readFileSync(join(dir, base)), GARBAGE);
    assert.equal(readFileSync(join(dir, `${base}-wal`), 'utf8'), 'wal bytes');
    assert.equal(readFileSync(join(dir, `${base}-shm`), 'utf8'), 'shm bytes');
  });

  it('damaged pages in a database not closed cleanly are found at open (quick_check)', TIMEOUT, async (t) => {
    const dir = newDir();
    const file = join(dir, DB_FILE);
    const p = new SqlitePersistence({ path: dir });
    await p.open();
    const ops: StorageOp[] = [];
    for (let i = 1; i <= 2000; i++) {
      ops.push({ type: 'putRetained', message: message(i, { topic: `t/${i}`, payload: Buffer.alloc(100, i) }) });
    }
    await p.commit(ops);
    await p.close();
    // Pretend the broker crashed, then scribble over every page but the first (the header and schema).
    const raw = new Database(file);
    raw.prepare("UPDATE meta SET value = 0 WHERE key = 'clean_shutdown'").run();
    const pageSize = raw.pragma('page_size', { simple: true }) as number;
    raw.close();
    const size = statSync(file).size;
    assert.ok(size > pageSize * 4);
    const fd = openSync(file, 'r+');
    for (let off = pageSize; off < size; off += pageSize) writeSync(fd, GARBAGE, 0, pageSize, off);
    closeSync(fd);
    await assert.rejects(new SqlitePersistence({ path: dir }).open(), rejectsWith('ERR_STORAGE_CORRUPT', file));
    const repaired = await openStore(t, { path: dir, repair: true });
    assert.deepEqual(await repaired.retainedStats(), { count: 0, bytes: 0 });
  });

  it('a v1 database made by the v1 SQL script migrates to the current schema, data and all', TIMEOUT, async (t) => {
    const dir = newDir();
    const file = join(dir, DB_FILE);
    const raw = new Database(file);
    raw.exec(V1_SCRIPT);
    raw.close();

    const p = await openStore(t, { path: dir });
    assert.deepEqual(await p.getSession('old'), session('old', { protocolLevel: 4, disconnectedAt: 1000, expiryInterval: 10 }));
    assert.deepEqual(await p.getSession('forever'), session('forever', { disconnectedAt: 1000, expiryInterval: SESSION_NEVER_EXPIRES }));
    assert.deepEqual(await p.getSubscriptions('forever'), [sub('a/#', { qos: 2, subscriptionId: 4 })]);
    assert.deepEqual(await p.loadOutbound('forever'), [
      {
        entry: entry(1, 7, { state: 'sent', packetId: 3, subscriptionIds: [4] }),
        message: message(7, { topic: 'a/b', payload: Buffer.from('hello') }),
      },
    ]);
    assert.deepEqual(await p.loadInbound('forever'), [9]);
    // v2 backfilled the retained stats and the session expiry index.
    assert.deepEqual(await p.retainedStats(), { count: 2, bytes: 8 });
    assert.deepEqual(
      (await collect(p.matchRetained('r/+'))).map((m) => m.topic).sort(),
      ['r/1', 'r/2'],
    );
    assert.equal(await p.lastMessageId(), 20);
    assert.deepEqual(await p.purgeExpired(11_000), { sessions: ['old'], messages: 0 });
    await p.commit([{ type: 'putRetained', message: message(21, { topic: 'r/3', payload: Buffer.alloc(2) }) }]);
    assert.deepEqual(await p.retainedStats(), { count: 3, bytes: 10 });
    await p.close();
    const check = new Database(file, { readonly: true });
    t.after(() => check.close());
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  });

  it('a database from a newer schema is refused with ERR_STORAGE_OPEN and left alone', TIMEOUT, async () => {
    const dir = newDir();
    const file = join(dir, DB_FILE);
    const raw = new Database(file);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    await assert.rejects(new SqlitePersistence({ path: dir, repair: true }).open(), rejectsWith('ERR_STORAGE_OPEN', 'newer'));
    const check = new Database(file, { readonly: true });
    assert.equal(check.pragma('user_version', { simple: true }), SCHEMA_VERSION + 1);
    check.close();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
  });
});

/**
 * The v1 schema exactly as released, plus rows, as a raw SQL script.
 * Kept here verbatim (not imported) so an accidental edit of the v1 migration
 * in src/ shows up as a failing migration test.
 */
const V1_SCRIPT = `
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE sessions (
  client_id TEXT PRIMARY KEY, protocol_level INTEGER NOT NULL, expiry_interval INTEGER NOT NULL,
  disconnected_at INTEGER, created_at INTEGER NOT NULL, will_topic TEXT, will_payload BLOB, will_qos INTEGER,
  will_retain INTEGER, will_properties TEXT, will_delay INTEGER
) WITHOUT ROWID;
CREATE TABLE subscriptions (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE, filter TEXT NOT NULL,
  qos INTEGER NOT NULL, no_local INTEGER NOT NULL, retain_as_published INTEGER NOT NULL,
  retain_handling INTEGER NOT NULL, subscription_id INTEGER, PRIMARY KEY (client_id, filter)
) WITHOUT ROWID;
CREATE TABLE messages (
  id INTEGER PRIMARY KEY, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL,
  properties TEXT, expires_at INTEGER, created_at INTEGER NOT NULL, refs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX messages_unreferenced ON messages(id) WHERE refs = 0;
CREATE INDEX messages_expiry ON messages(expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE outbound (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE, seq INTEGER NOT NULL,
  message_id INTEGER NOT NULL REFERENCES messages(id), qos INTEGER NOT NULL, packet_id INTEGER,
  state INTEGER NOT NULL, subscription_ids TEXT, retain INTEGER, PRIMARY KEY (client_id, seq)
) WITHOUT ROWID;
CREATE INDEX outbound_message ON outbound(message_id);
CREATE TABLE inbound (
  client_id TEXT NOT NULL REFERENCES sessions(client_id) ON DELETE CASCADE, packet_id INTEGER NOT NULL,
  PRIMARY KEY (client_id, packet_id)
) WITHOUT ROWID;
CREATE TABLE retained (
  topic BLOB PRIMARY KEY, message_id INTEGER NOT NULL REFERENCES messages(id), bytes INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX retained_message ON retained(message_id);
CREATE TRIGGER outbound_ref AFTER INSERT ON outbound BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id; END;
CREATE TRIGGER outbound_unref AFTER DELETE ON outbound BEGIN
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id; END;
CREATE TRIGGER outbound_reref AFTER UPDATE OF message_id ON outbound WHEN OLD.message_id <> NEW.message_id BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id; END;
CREATE TRIGGER retained_ref AFTER INSERT ON retained BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id; END;
CREATE TRIGGER retained_unref AFTER DELETE ON retained BEGIN
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id; END;
CREATE TRIGGER retained_reref AFTER UPDATE OF message_id ON retained WHEN OLD.message_id <> NEW.message_id BEGIN
  UPDATE messages SET refs = refs + 1 WHERE id = NEW.message_id;
  UPDATE messages SET refs = refs - 1 WHERE id = OLD.message_id; END;
PRAGMA user_version = 1;

PRAGMA foreign_keys = ON;
INSERT INTO meta VALUES ('last_message_id', 20), ('clean_shutdown', 1);
INSERT INTO sessions (client_id, protocol_level, expiry_interval, disconnected_at, created_at)
  VALUES ('old', 4, 10, 1000, ${1_700_000_000_000}), ('forever', 5, 4294967295, 1000, ${1_700_000_000_000});
INSERT INTO subscriptions VALUES ('forever', 'a/#', 2, 0, 0, 0, 4);
INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, created_at)
  VALUES (7, 'a/b', CAST('hello' AS BLOB), 1, 0, NULL, NULL, ${1_700_000_000_007}),
         (8, 'r/1', CAST('abc' AS BLOB), 1, 1, NULL, NULL, 1),
         (9, 'r/2', CAST('defgh' AS BLOB), 1, 1, NULL, NULL, 1);
INSERT INTO outbound VALUES ('forever', 1, 7, 1, 3, 1, '[4]', NULL);
INSERT INTO inbound VALUES ('forever', 9);
INSERT INTO retained VALUES (CAST('r/1' AS BLOB), 8, 3), (CAST('r/2' AS BLOB), 9, 5);
`;
