/**
 * SqlitePersistence: durable storage in `<dataDir>/tern.db` on better-sqlite3
 * (synchronous; each async method runs its statements in one go). Schema and
 * migrations: sqlite-schema.ts.
 *
 * Durability (WAL mode in both cases; a commit() is one SQLite transaction):
 * - `full` (synchronous=FULL): the WAL is fsynced before commit() resolves.
 *   A resolved commit survives a process crash, an OS crash and power loss.
 * - `normal` (synchronous=NORMAL): the WAL is fsynced only at checkpoints.
 *   A resolved commit survives a process crash (kill -9: the bytes are in the
 *   OS page cache); an OS crash or power loss may roll back the last commits.
 *   The database stays consistent (never corrupt) either way.
 * Because the API is synchronous, a commit blocks the event loop for its
 * duration (including the fsync with `full`); the WriteQueue groups ops from
 * many clients so that cost is paid once per group.
 *
 * Open: takes `<dataDir>/tern.lock` (lock-file.ts), checks the file (header,
 * schema version and, after an unclean shutdown, PRAGMA quick_check), then
 * runs pending migrations. quick_check reads the whole file (about 50 ms per
 * 100k retained messages in bench/persistence.bench.ts), so it is skipped after
 * a clean close to keep large stores quick to start; a clean close cannot have
 * left a torn write behind.
 * A file that is not a database or fails the check is ERR_STORAGE_CORRUPT;
 * with `repair: true` it is moved aside with its -wal/-shm to
 * `tern.db.corrupt-<timestamp>` (never deleted) and an empty store starts.
 * Nothing is loaded at open: loaders page through the tables by key (pages of
 * PAGE_SIZE rows) rather than holding a `stmt.iterate()` cursor, because an
 * open cursor makes every other statement on the connection fail with
 * "connection is busy" and async consumers interleave commits with loading.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { topicMatches } from '../broker/topic.js';
import type { QoS } from '../codec/types.js';
import { isTernError, ternError } from '../errors.js';
import { LockFile } from './lock-file.js';
import type { Persistence, RetainedLimits, StorageOp } from './persistence.js';
import { propertiesFromJson, propertiesToJson, sessionExpiresAt } from './records.js';
import { MIGRATIONS, SCHEMA_VERSION } from './sqlite-schema.js';
import type {
  ClientInbound,
  ClientOutbound,
  ClientSubscription,
  OutboundEntry,
  OutboundState,
  OutboundWithMessage,
  PurgeResult,
  RetainedStats,
  SessionRecord,
  StoredMessage,
  StoredSubscription,
} from './types.js';

export interface SqlitePersistenceOptions extends RetainedLimits {
  /** Data directory; created if missing. The database is `<path>/tern.db`. */
  path: string;
  /** See the file comment. Default `normal`. */
  durability?: 'full' | 'normal';
  /** Move a corrupt database aside and start empty instead of failing. Default false. */
  repair?: boolean;
}

export const DB_FILE = 'tern.db';
export const LOCK_FILE = 'tern.lock';
const PAGE_SIZE = 512;

const STATE_CODE: Record<OutboundState, number> = { queued: 0, sent: 1, pubrel: 2 };
const STATE_NAME: readonly OutboundState[] = ['queued', 'sent', 'pubrel'];

type Db = Database.Database;
type Stmt = Database.Statement;

/**
 * Rows are read as arrays (better-sqlite3 `raw()`), not objects: at start-up
 * a broker reads every session, subscription and queued message, and arrays
 * cost about 40% less CPU per row. The column lists below fix each position.
 */
type Row = unknown[];

/** 8 columns, read by messageAt. */
const MESSAGE_COLUMNS = 'm.id, m.topic, m.payload, m.qos, m.retain, m.properties, m.expires_at, m.created_at';
/** 12 columns, read by rowToSession. */
const SESSION_COLUMNS =
  'client_id, protocol_level, expiry_interval, disconnected_at, created_at, ' +
  'will_topic, will_payload, will_qos, will_retain, will_properties, will_delay, username';
/** 7 columns, read by rowToSubscription. */
const SUBSCRIPTION_COLUMNS =
  'client_id, filter, qos, no_local, retain_as_published, retain_handling, subscription_id';
/** 7 columns then MESSAGE_COLUMNS, read by outboundAt. */
const OUTBOUND_COLUMNS = `o.seq, o.message_id, o.qos, o.packet_id, o.state, o.subscription_ids, o.retain, ${MESSAGE_COLUMNS}`;

/** Every statement, prepared once per open. */
class Statements {
  readonly putSession: Stmt;
  readonly deleteSession: Stmt;
  readonly putSubscription: Stmt;
  readonly deleteSubscription: Stmt;
  readonly putMessage: Stmt;
  readonly putOutbound: Stmt;
  readonly deleteOutbound: Stmt;
  readonly putInbound: Stmt;
  readonly deleteInbound: Stmt;
  readonly putRetained: Stmt;
  readonly deleteRetained: Stmt;
  readonly retainedBytesOf: Stmt;
  readonly retainedStats: Stmt;
  readonly collectGarbage: Stmt;
  readonly setMeta: Stmt;
  readonly getMeta: Stmt;
  readonly maxMessageId: Stmt;
  readonly firstSessions: Stmt;
  readonly nextSessions: Stmt;
  readonly getSession: Stmt;
  readonly firstSubscriptions: Stmt;
  readonly nextSubscriptions: Stmt;
  readonly getSubscriptions: Stmt;
  readonly loadOutbound: Stmt;
  readonly loadInbound: Stmt;
  readonly firstOutboundAll: Stmt;
  readonly nextOutboundAll: Stmt;
  readonly firstInboundAll: Stmt;
  readonly nextInboundAll: Stmt;
  readonly firstRetained: Stmt;
  readonly nextRetained: Stmt;
  readonly getRetained: Stmt;
  readonly expiredSessions: Stmt;
  readonly deleteExpiredSessions: Stmt;
  readonly deleteExpiredQueued: Stmt;
  readonly deleteExpiredRetained: Stmt;

  constructor(db: Db) {
    this.putSession = db.prepare(
      `INSERT INTO sessions (${SESSION_COLUMNS}, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id) DO UPDATE SET protocol_level = excluded.protocol_level,
         expiry_interval = excluded.expiry_interval, disconnected_at = excluded.disconnected_at,
         created_at = excluded.created_at, will_topic = excluded.will_topic, will_payload = excluded.will_payload,
         will_qos = excluded.will_qos, will_retain = excluded.will_retain, will_properties = excluded.will_properties,
         will_delay = excluded.will_delay, username = excluded.username, expires_at = excluded.expires_at`,
    );
    this.deleteSession = db.prepare('DELETE FROM sessions WHERE client_id = ?');
    this.putSubscription = db.prepare(
      `INSERT INTO subscriptions (${SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, filter) DO UPDATE SET qos = excluded.qos, no_local = excluded.no_local,
         retain_as_published = excluded.retain_as_published, retain_handling = excluded.retain_handling,
         subscription_id = excluded.subscription_id`,
    );
    this.deleteSubscription = db.prepare('DELETE FROM subscriptions WHERE client_id = ? AND filter = ?');
    this.putMessage = db.prepare(
      `INSERT INTO messages (id, topic, payload, qos, retain, properties, expires_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    );
    this.putOutbound = db.prepare(
      `INSERT INTO outbound (client_id, seq, message_id, qos, packet_id, state, subscription_ids, retain)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (client_id, seq) DO UPDATE SET message_id = excluded.message_id, qos = excluded.qos,
         packet_id = excluded.packet_id, state = excluded.state, subscription_ids = excluded.subscription_ids,
         retain = excluded.retain`,
    );
    this.deleteOutbound = db.prepare('DELETE FROM outbound WHERE client_id = ? AND seq = ?');
    this.putInbound = db.prepare('INSERT INTO inbound (client_id, packet_id) VALUES (?, ?) ON CONFLICT DO NOTHING');
    this.deleteInbound = db.prepare('DELETE FROM inbound WHERE client_id = ? AND packet_id = ?');
    this.putRetained = db.prepare(
      `INSERT INTO retained (topic, message_id, bytes) VALUES (?, ?, ?)
       ON CONFLICT (topic) DO UPDATE SET message_id = excluded.message_id, bytes = excluded.bytes`,
    );
    this.deleteRetained = db.prepare('DELETE FROM retained WHERE topic = ?');
    this.retainedBytesOf = db.prepare('SELECT bytes FROM retained WHERE topic = ?').pluck();
    this.retainedStats = db.prepare('SELECT count, bytes FROM retained_stats WHERE id = 1');
    this.collectGarbage = db.prepare('DELETE FROM messages WHERE refs = 0');
    this.setMeta = db.prepare(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    );
    this.getMeta = db.prepare('SELECT value FROM meta WHERE key = ?').pluck();
    this.maxMessageId = db.prepare('SELECT max(id) FROM messages').pluck();

    this.firstSessions = db.prepare(`SELECT ${SESSION_COLUMNS} FROM sessions ORDER BY client_id LIMIT ?`).raw();
    this.nextSessions = db
      .prepare(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE client_id > ? ORDER BY client_id LIMIT ?`)
      .raw();
    this.getSession = db.prepare(`SELECT ${SESSION_COLUMNS} FROM sessions WHERE client_id = ?`).raw();
    this.firstSubscriptions = db
      .prepare(`SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions ORDER BY client_id, filter LIMIT ?`)
      .raw();
    this.nextSubscriptions = db
      .prepare(
        `SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE (client_id, filter) > (?, ?)
         ORDER BY client_id, filter LIMIT ?`,
      )
      .raw();
    this.getSubscriptions = db
      .prepare(`SELECT ${SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE client_id = ? ORDER BY filter`)
      .raw();
    this.loadOutbound = db
      .prepare(
        `SELECT ${OUTBOUND_COLUMNS} FROM outbound o JOIN messages m ON m.id = o.message_id
         WHERE o.client_id = ? ORDER BY o.seq`,
      )
      .raw();
    this.loadInbound = db.prepare('SELECT packet_id FROM inbound WHERE client_id = ? ORDER BY packet_id').pluck();
    const outboundAll = `SELECT o.client_id, ${OUTBOUND_COLUMNS} FROM outbound o JOIN messages m ON m.id = o.message_id`;
    this.firstOutboundAll = db.prepare(`${outboundAll} ORDER BY o.client_id, o.seq LIMIT ?`).raw();
    this.nextOutboundAll = db
      .prepare(`${outboundAll} WHERE (o.client_id, o.seq) > (?, ?) ORDER BY o.client_id, o.seq LIMIT ?`)
      .raw();
    this.firstInboundAll = db
      .prepare('SELECT client_id, packet_id FROM inbound ORDER BY client_id, packet_id LIMIT ?')
      .raw();
    this.nextInboundAll = db
      .prepare(
        `SELECT client_id, packet_id FROM inbound WHERE (client_id, packet_id) > (?, ?)
         ORDER BY client_id, packet_id LIMIT ?`,
      )
      .raw();
    // Retained rows: the topic key, then MESSAGE_COLUMNS.
    this.firstRetained = db
      .prepare(
        `SELECT r.topic, ${MESSAGE_COLUMNS} FROM retained r JOIN messages m ON m.id = r.message_id
         WHERE r.topic >= ? AND r.topic < ? ORDER BY r.topic LIMIT ?`,
      )
      .raw();
    this.nextRetained = db
      .prepare(
        `SELECT r.topic, ${MESSAGE_COLUMNS} FROM retained r JOIN messages m ON m.id = r.message_id
         WHERE r.topic > ? AND r.topic < ? ORDER BY r.topic LIMIT ?`,
      )
      .raw();
    this.getRetained = db
      .prepare(`SELECT ${MESSAGE_COLUMNS} FROM retained r JOIN messages m ON m.id = r.message_id WHERE r.topic = ?`)
      .raw();
    this.expiredSessions = db.prepare('SELECT client_id FROM sessions WHERE expires_at <= ?').pluck();
    this.deleteExpiredSessions = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
    this.deleteExpiredQueued = db.prepare(
      `DELETE FROM outbound WHERE state = ${STATE_CODE.queued}
         AND message_id IN (SELECT id FROM messages WHERE expires_at <= ?)`,
    );
    this.deleteExpiredRetained = db.prepare(
      'DELETE FROM retained WHERE message_id IN (SELECT id FROM messages WHERE expires_at <= ?)',
    );
  }
}

export class SqlitePersistence implements Persistence {
  readonly #dir: string;
  readonly #file: string;
  readonly #durability: 'full' | 'normal';
  readonly #repair: boolean;
  readonly #maxRetained: number;
  readonly #maxRetainedBytes: number;
  #db: Db | null = null;
  #s: Statements | null = null;
  #lock: LockFile | null = null;
  #lastMessageId = 0;
  #transaction: ((ops: readonly StorageOp[]) => number) | null = null;
  #purgeTransaction: ((now: number) => PurgeResult) | null = null;

  constructor(opts: SqlitePersistenceOptions) {
    this.#dir = opts.path;
    this.#file = join(opts.path, DB_FILE);
    this.#durability = opts.durability ?? 'normal';
    this.#repair = opts.repair ?? false;
    this.#maxRetained = opts.maxRetained ?? 0;
    this.#maxRetainedBytes = opts.maxRetainedBytes ?? 0;
  }

  /** Path of the database file. */
  get file(): string {
    return this.#file;
  }

  async open(): Promise<void> {
    if (this.#db !== null) return;
    try {
      mkdirSync(this.#dir, { recursive: true });
    } catch (err) {
      throw ternError('ERR_STORAGE_OPEN', `cannot create ${this.#dir}: ${(err as Error).message}`, { cause: err });
    }
    const lock = LockFile.acquire(join(this.#dir, LOCK_FILE));
    try {
      const db = this.#openDatabase();
      this.#db = db;
      this.#s = new Statements(db);
      this.#lastMessageId = Math.max(
        (this.#s.getMeta.get('last_message_id') as number | undefined) ?? 0,
        (this.#s.maxMessageId.get() as number | null) ?? 0,
      );
      this.#s.setMeta.run('clean_shutdown', 0);
      this.#transaction = db.transaction((ops: readonly StorageOp[]) => this.#applyAll(ops));
      this.#purgeTransaction = db.transaction((now: number) => this.#purge(now));
      this.#lock = lock;
    } catch (err) {
      this.#db?.close();
      this.#db = null;
      this.#s = null;
      lock.release();
      throw err;
    }
  }

  async close(): Promise<void> {
    const db = this.#db;
    if (db === null) return;
    try {
      this.#s!.setMeta.run('clean_shutdown', 1);
    } finally {
      this.#db = null;
      this.#s = null;
      this.#transaction = null;
      this.#purgeTransaction = null;
      db.close();
      this.#lock?.release();
      this.#lock = null;
    }
  }

  async commit(ops: readonly StorageOp[]): Promise<void> {
    const tx = this.#transaction;
    if (tx === null) throw ternError('ERR_STORAGE_CLOSED');
    let maxId: number;
    try {
      maxId = tx(ops);
    } catch (err) {
      if (isTernError(err)) throw err;
      throw ternError('ERR_STORAGE_WRITE', `${this.#file}: ${(err as Error).message}`, { cause: err });
    }
    if (maxId > this.#lastMessageId) this.#lastMessageId = maxId;
  }

  async lastMessageId(): Promise<number> {
    this.#stmts();
    return this.#lastMessageId;
  }

  async *loadSessions(): AsyncIterable<SessionRecord> {
    let rows = this.#stmts().firstSessions.all(PAGE_SIZE) as Row[];
    while (rows.length > 0) {
      for (const row of rows) yield rowToSession(row);
      if (rows.length < PAGE_SIZE) return;
      rows = this.#stmts().nextSessions.all(rows[rows.length - 1]![0], PAGE_SIZE) as Row[];
    }
  }

  async getSession(clientId: string): Promise<SessionRecord | undefined> {
    const row = this.#stmts().getSession.get(clientId) as Row | undefined;
    return row === undefined ? undefined : rowToSession(row);
  }

  async *loadSubscriptions(): AsyncIterable<ClientSubscription> {
    let rows = this.#stmts().firstSubscriptions.all(PAGE_SIZE) as Row[];
    while (rows.length > 0) {
      for (const row of rows) yield { clientId: row[0] as string, subscription: rowToSubscription(row) };
      if (rows.length < PAGE_SIZE) return;
      const last = rows[rows.length - 1]!;
      rows = this.#stmts().nextSubscriptions.all(last[0], last[1], PAGE_SIZE) as Row[];
    }
  }

  async getSubscriptions(clientId: string): Promise<StoredSubscription[]> {
    return (this.#stmts().getSubscriptions.all(clientId) as Row[]).map(rowToSubscription);
  }

  async loadOutbound(clientId: string): Promise<OutboundWithMessage[]> {
    const rows = this.#stmts().loadOutbound.all(clientId) as Row[];
    return rows.map((row) => outboundAt(row, 0));
  }

  async loadInbound(clientId: string): Promise<number[]> {
    return this.#stmts().loadInbound.all(clientId) as number[];
  }

  /** One pass over the outbound table in key order: at start-up, far cheaper than a query per session. */
  async *loadAllOutbound(): AsyncIterable<ClientOutbound> {
    let rows = this.#stmts().firstOutboundAll.all(PAGE_SIZE) as Row[];
    while (rows.length > 0) {
      for (const row of rows) {
        const { entry, message } = outboundAt(row, 1);
        yield { clientId: row[0] as string, entry, message };
      }
      if (rows.length < PAGE_SIZE) return;
      const last = rows[rows.length - 1]!;
      rows = this.#stmts().nextOutboundAll.all(last[0], last[1], PAGE_SIZE) as Row[];
    }
  }

  async *loadAllInbound(): AsyncIterable<ClientInbound> {
    let rows = this.#stmts().firstInboundAll.all(PAGE_SIZE) as Row[];
    while (rows.length > 0) {
      for (const row of rows) yield { clientId: row[0] as string, packetId: row[1] as number };
      if (rows.length < PAGE_SIZE) return;
      const last = rows[rows.length - 1]!;
      rows = this.#stmts().nextInboundAll.all(last[0], last[1], PAGE_SIZE) as Row[];
    }
  }

  async *matchRetained(filter: string): AsyncIterable<StoredMessage> {
    let prefix = literalPrefix(filter);
    if (prefix === null) {
      const m = await this.getRetained(filter);
      if (m !== undefined) yield m;
      return;
    }
    if (prefix.length > 0 && filter.length > prefix.length + 1 && filter[prefix.length] === '/' && filter[prefix.length + 1] === '#') {
      // `a/#`: the parent `a` itself, then the range under `a/` (not all of `a…`: `ab/c` is no match).
      const parent = await this.getRetained(prefix);
      if (parent !== undefined) yield parent;
      prefix += '/';
    }
    const start = Buffer.from(prefix);
    const end = Buffer.concat([start, END_BYTE]);
    let rows = this.#stmts().firstRetained.all(start, end, PAGE_SIZE) as Row[];
    while (rows.length > 0) {
      for (const row of rows) {
        if (topicMatches(filter, row[2] as string)) yield messageAt(row, 1);
      }
      if (rows.length < PAGE_SIZE) return;
      rows = this.#stmts().nextRetained.all(rows[rows.length - 1]![0], end, PAGE_SIZE) as Row[];
    }
  }

  async getRetained(topic: string): Promise<StoredMessage | undefined> {
    const row = this.#stmts().getRetained.get(Buffer.from(topic)) as Row | undefined;
    return row === undefined ? undefined : messageAt(row, 0);
  }

  async retainedStats(): Promise<RetainedStats> {
    return this.#stmts().retainedStats.get() as RetainedStats;
  }

  async purgeExpired(now: number): Promise<PurgeResult> {
    const tx = this.#purgeTransaction;
    if (tx === null) throw ternError('ERR_STORAGE_CLOSED');
    try {
      return tx(now);
    } catch (err) {
      throw ternError('ERR_STORAGE_WRITE', `${this.#file}: ${(err as Error).message}`, { cause: err });
    }
  }

  #stmts(): Statements {
    if (this.#s === null) throw ternError('ERR_STORAGE_CLOSED');
    return this.#s;
  }

  /** Runs inside the commit transaction; returns the highest message id put. */
  #applyAll(ops: readonly StorageOp[]): number {
    const s = this.#s!;
    let maxId = 0;
    let i = 0;
    try {
      for (; i < ops.length; i++) {
        const op = ops[i]!;
        switch (op.type) {
          case 'putSession': {
            const r = op.session;
            const w = r.will;
            s.putSession.run(
              r.clientId,
              r.protocolLevel,
              r.expiryInterval,
              r.disconnectedAt,
              r.createdAt,
              w?.topic ?? null,
              w?.payload ?? null,
              w?.qos ?? null,
              w === undefined ? null : w.retain ? 1 : 0,
              w?.properties === undefined ? null : propertiesToJson(w.properties),
              w?.delayInterval ?? null,
              r.username ?? null,
              sessionExpiresAt(r),
            );
            break;
          }
          case 'deleteSession':
            s.deleteSession.run(op.clientId);
            break;
          case 'putSubscription': {
            const sub = op.subscription;
            s.putSubscription.run(
              op.clientId,
              sub.filter,
              sub.qos,
              sub.noLocal ? 1 : 0,
              sub.retainAsPublished ? 1 : 0,
              sub.retainHandling,
              sub.subscriptionId ?? null,
            );
            break;
          }
          case 'deleteSubscription':
            s.deleteSubscription.run(op.clientId, op.filter);
            break;
          case 'putMessage':
            this.#putMessage(op.message);
            if (op.message.id > maxId) maxId = op.message.id;
            break;
          case 'putOutbound': {
            const e = op.entry;
            s.putOutbound.run(
              op.clientId,
              e.seq,
              e.messageId,
              e.qos,
              e.packetId ?? null,
              STATE_CODE[e.state],
              e.subscriptionIds === undefined ? null : JSON.stringify(e.subscriptionIds),
              e.retain === undefined ? null : e.retain ? 1 : 0,
            );
            break;
          }
          case 'deleteOutbound':
            s.deleteOutbound.run(op.clientId, op.seq);
            break;
          case 'putInbound':
            s.putInbound.run(op.clientId, op.packetId);
            break;
          case 'deleteInbound':
            s.deleteInbound.run(op.clientId, op.packetId);
            break;
          case 'putRetained': {
            const m = op.message;
            const key = Buffer.from(m.topic);
            const size = m.payload.length;
            if (this.#maxRetained > 0 || this.#maxRetainedBytes > 0) this.#checkRetainedLimits(key, m.topic, size);
            this.#putMessage(m);
            if (m.id > maxId) maxId = m.id;
            s.putRetained.run(key, m.id, size);
            break;
          }
          case 'deleteRetained':
            s.deleteRetained.run(Buffer.from(op.topic));
            break;
          default:
            throw ternError('ERR_STORAGE_INVALID_OP', `unknown op ${JSON.stringify((op as { type?: unknown }).type)}`);
        }
      }
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
        const op = ops[i]!;
        const client = 'clientId' in op ? ` for client ${JSON.stringify(op.clientId)}` : '';
        throw ternError('ERR_STORAGE_INVALID_OP', `${op.type}${client} references a missing session or message`, {
          cause: err,
        });
      }
      throw err;
    }
    s.collectGarbage.run();
    if (maxId > this.#lastMessageId) s.setMeta.run('last_message_id', maxId);
    return maxId;
  }

  #putMessage(m: StoredMessage): void {
    this.#s!.putMessage.run(
      m.id,
      m.topic,
      m.payload,
      m.qos,
      m.retain ? 1 : 0,
      m.properties === undefined ? null : propertiesToJson(m.properties),
      m.expiresAt ?? null,
      m.createdAt,
    );
  }

  /** Same rule as MemoryPersistence: refuse only growth past a limit. */
  #checkRetainedLimits(key: Buffer, topic: string, size: number): void {
    const s = this.#s!;
    const prev = s.retainedBytesOf.get(key) as number | undefined;
    const stats = s.retainedStats.get() as RetainedStats;
    if (this.#maxRetained > 0 && prev === undefined && stats.count + 1 > this.#maxRetained) {
      throw ternError('ERR_STORAGE_RETAINED_LIMIT', `${this.#maxRetained} retained messages (topic ${topic})`);
    }
    const grow = size - (prev ?? 0);
    if (this.#maxRetainedBytes > 0 && grow > 0 && stats.bytes + grow > this.#maxRetainedBytes) {
      throw ternError('ERR_STORAGE_RETAINED_LIMIT', `${this.#maxRetainedBytes} retained bytes (topic ${topic})`);
    }
  }

  #purge(now: number): PurgeResult {
    const s = this.#s!;
    const sessions = s.expiredSessions.all(now) as string[];
    if (sessions.length > 0) s.deleteExpiredSessions.run(now);
    const messages = s.deleteExpiredQueued.run(now).changes + s.deleteExpiredRetained.run(now).changes;
    s.collectGarbage.run();
    return { sessions, messages };
  }

  #openDatabase(): Db {
    try {
      return this.#tryOpen();
    } catch (err) {
      if (!isCorruption(err)) {
        if (isTernError(err)) throw err;
        throw ternError('ERR_STORAGE_OPEN', `${this.#file}: ${(err as Error).message}`, { cause: err });
      }
      if (!this.#repair) {
        throw ternError(
          'ERR_STORAGE_CORRUPT',
          `${this.#file} (${(err as Error).message}); start with repair enabled to move it aside and begin empty`,
          { cause: err },
        );
      }
      moveAside(this.#file);
      return this.#tryOpen();
    }
  }

  #tryOpen(): Db {
    if (existsSync(this.#file) && statSync(this.#file).size > 0) this.#inspect();
    const db = new Database(this.#file);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.#durability === 'full' ? 'FULL' : 'NORMAL'}`);
      db.pragma('foreign_keys = ON');
      // Keep the WAL file from staying large after a burst.
      db.pragma('journal_size_limit = 67108864');
      db.pragma('cache_size = -16384');
      const version = db.pragma('user_version', { simple: true }) as number;
      for (let v = version; v < SCHEMA_VERSION; v++) {
        db.transaction(() => {
          db.exec(MIGRATIONS[v]!);
          db.pragma(`user_version = ${v + 1}`);
        })();
      }
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Checks an existing file before the read-write open: the header, the schema
   * version and, after an unclean shutdown, quick_check. Done on a read-only
   * connection because closing a read-write one checkpoints or deletes the
   * -wal file, which must survive intact if the file is moved aside.
   */
  #inspect(): void {
    const header = Buffer.alloc(SQLITE_HEADER.length);
    const fd = openSync(this.#file, 'r');
    try {
      readSync(fd, header, 0, header.length, 0);
    } finally {
      closeSync(fd);
    }
    if (!header.equals(SQLITE_HEADER)) throw new CorruptionError('not an SQLite database (bad header)');
    const db = new Database(this.#file, { readonly: true, fileMustExist: true });
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SCHEMA_VERSION) {
        throw ternError(
          'ERR_STORAGE_OPEN',
          `${this.#file} has schema version ${version}, newer than this Tern's ${SCHEMA_VERSION}`,
        );
      }
      if (version === 0) return;
      const clean = db.prepare("SELECT value FROM meta WHERE key = 'clean_shutdown'").pluck().get() as
        | number
        | undefined;
      // Asked to repair, check even after a clean shutdown: damage can come from outside.
      if (clean !== 1 || this.#repair) quickCheck(db);
    } finally {
      db.close();
    }
  }
}

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

/** Thrown by quickCheck; classified as corruption. */
class CorruptionError extends Error {}

function quickCheck(db: Db): void {
  const result = db.pragma('quick_check(1)', { simple: true }) as string;
  if (result !== 'ok') throw new CorruptionError(`quick_check: ${result}`);
}

function isCorruption(err: unknown): boolean {
  if (err instanceof CorruptionError) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'));
}

/** Renames the database and its -wal/-shm to `<file>.corrupt-<timestamp>[-wal|-shm]`. */
function moveAside(file: string): void {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let target = `${file}.corrupt-${stamp}`;
  for (let n = 1; existsSync(target); n++) target = `${file}.corrupt-${stamp}-${n}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, target + suffix);
  }
}

const END_BYTE = Buffer.from([0xff]);

/**
 * The literal part of a filter before its first wildcard, or null when it has
 * none. Before a `#` the trailing `/` is dropped: `a/#` also matches `a`.
 */
function literalPrefix(filter: string): string | null {
  const plus = filter.indexOf('+');
  const hash = filter.indexOf('#');
  if (plus < 0 && hash < 0) return null;
  if (hash >= 0 && (plus < 0 || hash < plus)) {
    return hash > 0 ? filter.slice(0, hash - 1) : '';
  }
  return filter.slice(0, plus);
}

/** The message in MESSAGE_COLUMNS at `i`. */
function messageAt(r: Row, i: number): StoredMessage {
  const m: StoredMessage = {
    id: r[i] as number,
    topic: r[i + 1] as string,
    payload: r[i + 2] as Buffer,
    qos: r[i + 3] as QoS,
    retain: r[i + 4] === 1,
    createdAt: r[i + 7] as number,
  };
  const properties = r[i + 5] as string | null;
  if (properties !== null) m.properties = propertiesFromJson(properties);
  const expiresAt = r[i + 6] as number | null;
  if (expiresAt !== null) m.expiresAt = expiresAt;
  return m;
}

/** A row of SESSION_COLUMNS. */
function rowToSession(r: Row): SessionRecord {
  const s: SessionRecord = {
    clientId: r[0] as string,
    protocolLevel: r[1] as 3 | 4 | 5,
    expiryInterval: r[2] as number,
    disconnectedAt: r[3] as number | null,
    createdAt: r[4] as number,
  };
  const willTopic = r[5] as string | null;
  if (willTopic !== null) {
    s.will = {
      topic: willTopic,
      payload: r[6] as Buffer,
      qos: r[7] as QoS,
      retain: r[8] === 1,
      delayInterval: r[10] as number,
    };
    const willProperties = r[9] as string | null;
    if (willProperties !== null) s.will.properties = propertiesFromJson(willProperties);
  }
  const username = r[11] as string | null;
  if (username !== null) s.username = username;
  return s;
}

/** A row of SUBSCRIPTION_COLUMNS. */
function rowToSubscription(r: Row): StoredSubscription {
  const sub: StoredSubscription = {
    filter: r[1] as string,
    qos: r[2] as QoS,
    noLocal: r[3] === 1,
    retainAsPublished: r[4] === 1,
    retainHandling: r[5] as 0 | 1 | 2,
  };
  const subscriptionId = r[6] as number | null;
  if (subscriptionId !== null) sub.subscriptionId = subscriptionId;
  return sub;
}

/** The outbound entry and its message in OUTBOUND_COLUMNS at `i`. */
function outboundAt(r: Row, i: number): OutboundWithMessage {
  const entry: OutboundEntry = {
    seq: r[i] as number,
    messageId: r[i + 1] as number,
    qos: r[i + 2] as QoS,
    state: STATE_NAME[r[i + 4] as number]!,
  };
  const packetId = r[i + 3] as number | null;
  if (packetId !== null) entry.packetId = packetId;
  const subscriptionIds = r[i + 5] as string | null;
  if (subscriptionIds !== null) entry.subscriptionIds = JSON.parse(subscriptionIds) as number[];
  const retain = r[i + 6] as number | null;
  if (retain !== null) entry.retain = retain === 1;
  return { entry, message: messageAt(r, i + 7) };
}
