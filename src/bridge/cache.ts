/**
 * The bridge's message cache: its own SQLite file (`bridge-<name>.db`,
 * better-sqlite3, WAL), one row per message, the rowid being the pipeline
 * sequence number, so reading by rowid is reading in insertion order.
 *
 * Durability (a commit is one transaction holding a group of messages):
 * - `full` (synchronous=FULL): each commit is fsynced before the bridge
 *   acknowledges the group to the local broker; a power loss costs nothing
 *   that was acknowledged.
 * - `normal` (synchronous=NORMAL): commits are fsynced at WAL checkpoints; a
 *   power loss may lose the groups since the last checkpoint (a process
 *   crash loses nothing). The file stays consistent either way.
 * Delete-only commits (rows the remote acknowledged) never fsync: losing one
 * to a power cut resends those messages, it loses none.
 *
 * Open: takes `<file>.lock` (another bridge on the same cache is refused with
 * ERR_STORAGE_LOCKED), checks the header and runs quick_check; a corrupt file
 * is moved aside with its -wal/-shm to `<file>.corrupt-<time>` (never
 * deleted) and a fresh cache starts; damage found later, while open, goes
 * the same way through reset() (the pipeline decides what to write again).
 * auto_vacuum=INCREMENTAL: after a drain
 * the freed pages are returned to the file system in steps.
 *
 * A full disk (SQLITE_FULL) is a full cache: the commit is retried once with
 * the limit lowered to the current row count, so the overflow policy applies.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ternError } from '../errors.js';
import { LockFile } from '../persistence/lock-file.js';
import { Entry, Flag } from './entry.js';

type Db = Database.Database;
type Stmt = Database.Statement;

export type OverflowPolicy = 'drop_oldest' | 'reject_new';

export interface CacheLimits {
  maxMessages: number;
  maxBytes: number;
  overflow: OverflowPolicy;
}

export interface CacheOpenOptions {
  durability: 'full' | 'normal';
  /** Caps the database file (pages of 4 KiB); a way to model a full disk in tests. */
  maxPageCount?: number;
}

/** What one commit did besides inserting. */
export interface CommitResult {
  /** Rows deleted because the remote acknowledged them. */
  deleted: number;
  /** Cached rows evicted (drop_oldest), all with seq <= evictedUpTo. */
  evicted: number;
  evictedUpTo: number;
  /** The first `batchEvicted` rows of the batch were evicted before insertion (batch larger than the cache). */
  batchEvicted: number;
  /** Rows of the batch from this index on were refused (reject_new, or a full disk). */
  rejectedFrom: number;
  /** The commit hit a full disk. */
  diskFull: boolean;
}

/** seq, topic, payload, qos, retain, props, expires_at */
type RawRow = [number, string, Buffer, number, number, string | null, number];

const SCHEMA = `
CREATE TABLE IF NOT EXISTS msgs (
  seq INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  qos INTEGER NOT NULL,
  retain INTEGER NOT NULL,
  props TEXT,
  expires_at INTEGER NOT NULL,
  size INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
`;

const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');

class CorruptionError extends Error {}

interface Statements {
  insert: Stmt;
  read: Stmt;
  rangeStats: Stmt;
  deleteRange: Stmt;
  headRows: Stmt;
  setLastSeq: Stmt;
}

function prepare(db: Db): Statements {
  return {
    insert: db.prepare('INSERT INTO msgs (seq, topic, payload, qos, retain, props, expires_at, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    read: db.prepare('SELECT seq, topic, payload, qos, retain, props, expires_at FROM msgs WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?').raw(),
    rangeStats: db.prepare('SELECT count(*) AS n, total(size) AS b FROM msgs WHERE seq > ? AND seq <= ?'),
    deleteRange: db.prepare('DELETE FROM msgs WHERE seq > ? AND seq <= ?'),
    headRows: db.prepare('SELECT seq, size FROM msgs WHERE seq > ? ORDER BY seq LIMIT ?').raw(),
    setLastSeq: db.prepare("INSERT INTO meta (key, value) VALUES ('last_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"),
  };
}

export class BridgeCache {
  readonly file: string;
  /** Where a corrupt file was moved at open, if it was. */
  readonly movedAside: string | null;
  #db: Db;
  readonly #lock: LockFile;
  readonly #durability: 'full' | 'normal';
  readonly #options: CacheOpenOptions;
  #s: Statements;
  #count = 0;
  #bytes = 0;
  #firstSeq = 0;
  #lastSeq = 0;
  /** After SQLITE_FULL: the row count the disk held (0 = no such cap). */
  #diskCap = 0;
  #closed = false;

  private constructor(file: string, db: Db, lock: LockFile, options: CacheOpenOptions, movedAside: string | null) {
    this.file = file;
    this.#db = db;
    this.#lock = lock;
    this.#durability = options.durability;
    this.#options = options;
    this.movedAside = movedAside;
    this.#s = prepare(db);
    const s = db.prepare('SELECT count(*) AS n, total(size) AS b, min(seq) AS lo, max(seq) AS hi FROM msgs').get() as {
      n: number;
      b: number;
      lo: number | null;
      hi: number | null;
    };
    this.#count = s.n;
    this.#bytes = s.b;
    this.#firstSeq = s.lo ?? 0;
    this.#lastSeq = s.hi ?? (db.prepare("SELECT value FROM meta WHERE key = 'last_seq'").pluck().get() as number | undefined) ?? 0;
    db.prepare("INSERT INTO meta (key, value) VALUES ('clean_shutdown', 0) ON CONFLICT(key) DO UPDATE SET value = 0").run();
  }

  /**
   * Open (creating) the cache at `file`. Throws ERR_STORAGE_LOCKED when
   * another bridge holds it, ERR_STORAGE_OPEN when it cannot be opened; a
   * corrupt file is moved aside and a fresh cache returned (see movedAside).
   */
  static open(file: string, options: CacheOpenOptions): BridgeCache {
    mkdirSync(dirname(file), { recursive: true });
    const lock = LockFile.acquire(`${file}.lock`);
    try {
      let movedAside: string | null = null;
      let db: Db;
      try {
        db = openDb(file, options);
      } catch (err) {
        if (!isCorruption(err)) throw ternError('ERR_STORAGE_OPEN', `${file}: ${(err as Error).message}`, { cause: err });
        movedAside = moveAside(file);
        db = openDb(file, options);
      }
      return new BridgeCache(file, db, lock, options, movedAside);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Lowest cached seq (0 when empty at open). */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** Highest seq ever committed (kept across a drain, so seqs never go back). */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /**
   * The file turned out corrupt while open: close it, move it (with its
   * -wal/-shm) aside to `<file>.corrupt-<time>` (never deleted), and open a
   * fresh, empty cache in its place whose sequence goes on after `lastSeq`.
   * The lock stays held. Returns where the corrupt file went. Throws
   * ERR_STORAGE_OPEN when the fresh cache cannot be opened (the cache is
   * then unusable: every later call fails).
   */
  reset(lastSeq: number): string {
    try {
      this.#db.close(); // may checkpoint the WAL into the file: SQLite's own committed pages, nothing is dropped
    } catch {
      // A connection that cannot close cleanly is gone all the same.
    }
    const movedTo = moveAside(this.file);
    let db: Db;
    try {
      db = openDb(this.file, this.#options);
    } catch (err) {
      throw ternError('ERR_STORAGE_OPEN', `${this.file}: ${(err as Error).message}`, { cause: err });
    }
    this.#db = db;
    this.#s = prepare(db);
    this.#count = 0;
    this.#bytes = 0;
    this.#firstSeq = 0;
    this.#diskCap = 0;
    if (lastSeq > this.#lastSeq) this.#lastSeq = lastSeq;
    this.#s.setLastSeq.run(this.#lastSeq);
    db.prepare("INSERT INTO meta (key, value) VALUES ('clean_shutdown', 0) ON CONFLICT(key) DO UPDATE SET value = 0").run();
    return movedTo;
  }

  /** Rows with after < seq < before, or null when the file cannot tell (corrupt). */
  tryCount(after: number, before: number): number | null {
    try {
      return this.#db.prepare('SELECT count(*) FROM msgs WHERE seq > ? AND seq < ?').pluck().get(after, before) as number;
    } catch {
      return null;
    }
  }

  /** Rows with after < seq < before, oldest first, as pipeline entries (committed). */
  read(after: number, before: number, limit: number): Entry[] {
    const rows = this.#s.read.all(after, before, limit) as RawRow[];
    const out = new Array<Entry>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      out[i] = new Entry(r[0], r[1], r[2], r[3] as 0 | 1 | 2, r[4] === 1, r[5], undefined, r[6], Flag.ROW | Flag.COMMITTED, 0, 0);
    }
    return out;
  }

  /**
   * One transaction: delete the acknowledged rows (deletedUpTo, ackedUpTo],
   * make room by policy, insert `rows` (seq order). Returns what happened.
   */
  commit(rows: readonly Entry[], deletedUpTo: number, ackedUpTo: number, limits: CacheLimits): CommitResult {
    const result: CommitResult = {
      deleted: 0,
      evicted: 0,
      evictedUpTo: 0,
      batchEvicted: 0,
      rejectedFrom: rows.length,
      diskFull: false,
    };
    if (rows.length === 0 && ackedUpTo <= deletedUpTo) return result;
    const db = this.#db;
    // Delete-only commits skip the fsync: a lost delete means a resend, never a loss.
    const relax = rows.length === 0 && this.#durability === 'full';
    if (relax) db.pragma('synchronous = NORMAL');
    try {
      this.#tryCommit(rows, deletedUpTo, ackedUpTo, limits, result, this.#diskCap);
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_FULL') throw err;
      // Full disk = full cache: the limit becomes what the disk holds now.
      result.diskFull = true;
      result.deleted = result.evicted = result.batchEvicted = 0;
      result.rejectedFrom = rows.length;
      this.#diskCap = Math.max(1, this.#count);
      try {
        this.#tryCommit(rows, deletedUpTo, ackedUpTo, limits, result, this.#diskCap);
      } catch (err2) {
        if ((err2 as { code?: string }).code !== 'SQLITE_FULL') throw err2;
        result.deleted = result.evicted = result.batchEvicted = 0;
        result.rejectedFrom = 0;
      }
    } finally {
      if (relax) db.pragma('synchronous = FULL');
    }
    return result;
  }

  #tryCommit(rows: readonly Entry[], deletedUpTo: number, ackedUpTo: number, limits: CacheLimits, r: CommitResult, diskCap: number): void {
    let count = this.#count;
    let bytes = this.#bytes;
    let lastSeq = this.#lastSeq;
    let firstSeq = this.#firstSeq;
    let firstInserted = 0;
    const maxMessages = diskCap > 0 ? (limits.maxMessages > 0 ? Math.min(limits.maxMessages, diskCap) : diskCap) : limits.maxMessages;
    const maxBytes = limits.maxBytes;
    this.#db.transaction(() => {
      if (ackedUpTo > deletedUpTo) {
        const s = this.#s.rangeStats.get(deletedUpTo, ackedUpTo) as { n: number; b: number };
        if (s.n > 0) {
          this.#s.deleteRange.run(deletedUpTo, ackedUpTo);
          count -= s.n;
          bytes -= s.b;
          r.deleted = s.n;
        }
      }
      let batchBytes = 0;
      for (const e of rows) batchBytes += e.size;
      let first = 0;
      let end = rows.length;
      if (limits.overflow === 'drop_oldest') {
        // Evict from the head of the cache, then (if the batch alone is too big) from the head of the batch.
        let overN = maxMessages > 0 ? count + rows.length - maxMessages : 0;
        let overB = maxBytes > 0 ? bytes + batchBytes - maxBytes : 0;
        let from = Math.max(deletedUpTo, ackedUpTo);
        while ((overN > 0 || overB > 0) && count > 0) {
          const head = this.#s.headRows.all(from, 512) as Array<[number, number]>;
          if (head.length === 0) break;
          let upTo = from;
          for (const [seq, size] of head) {
            if (overN <= 0 && overB <= 0) break;
            upTo = seq;
            overN--;
            overB -= size;
            count--;
            bytes -= size;
            r.evicted++;
          }
          this.#s.deleteRange.run(from, upTo);
          r.evictedUpTo = upTo;
          from = upTo;
        }
        while ((overN > 0 || overB > 0) && first < end) {
          overN--;
          overB -= rows[first]!.size;
          first++;
        }
        r.batchEvicted = first;
      } else {
        // reject_new: keep the longest prefix of the batch that fits.
        let n = count;
        let b = bytes;
        for (let i = 0; i < rows.length; i++) {
          const size = rows[i]!.size;
          if ((maxMessages > 0 && n + 1 > maxMessages) || (maxBytes > 0 && b + size > maxBytes)) {
            end = i;
            break;
          }
          n++;
          b += size;
        }
      }
      const insert = this.#s.insert;
      for (let i = first; i < end; i++) {
        const e = rows[i]!;
        insert.run(e.seq, e.topic, e.payload, e.qos, e.retain ? 1 : 0, e.props, e.expiresAt, e.size);
        count++;
        bytes += e.size;
        if (e.seq > lastSeq) lastSeq = e.seq;
      }
      r.rejectedFrom = end;
      if (end > first) firstInserted = rows[first]!.seq;
      if (count === 0) {
        // Keep the sequence going across a drain: seqs never go back.
        this.#s.setLastSeq.run(lastSeq);
      }
    })();
    if (count === 0) firstSeq = 0;
    else if (firstSeq === 0 && firstInserted > 0) firstSeq = firstInserted;
    this.#count = count;
    this.#bytes = bytes;
    this.#lastSeq = lastSeq;
    this.#firstSeq = firstSeq;
  }

  /** Whether a full disk lowered the limit (cleared by a drain). */
  get diskFull(): boolean {
    return this.#diskCap > 0;
  }

  /**
   * After a drain: return free pages to the file system, `pages` at a time
   * (so a large vacuum does not block the event loop for long). Returns true
   * while there is more to free.
   */
  vacuumStep(pages = 4096): boolean {
    if (this.#closed) return false;
    const db = this.#db;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    if (free > 0) db.pragma(`incremental_vacuum(${pages})`);
    if (free > pages) return true;
    // Done: move the shrunk pages into the file and truncate the WAL.
    db.pragma('wal_checkpoint(TRUNCATE)');
    this.#diskCap = 0;
    return false;
  }

  /** File sizes (db + wal), for the space-reclaim checks. */
  fileBytes(): number {
    let n = 0;
    for (const suffix of ['', '-wal']) {
      try {
        n += statSync(this.file + suffix).size;
      } catch {
        // absent
      }
    }
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#db.prepare("UPDATE meta SET value = 1 WHERE key = 'clean_shutdown'").run();
    } catch {
      // A corrupt (or already closed) file: nothing more to record.
    }
    try {
      this.#db.close();
    } finally {
      this.#lock.release();
    }
  }
}

function openDb(file: string, options: CacheOpenOptions): Db {
  if (existsSync(file) && statSync(file).size > 0) checkHeader(file);
  const db = new Database(file);
  try {
    // auto_vacuum must be set before the first table is created.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    db.pragma('journal_size_limit = 16777216');
    db.pragma('cache_size = -8192');
    if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${options.maxPageCount}`);
    db.exec(SCHEMA);
    const check = db.pragma('quick_check(1)', { simple: true }) as string;
    if (check !== 'ok') throw new CorruptionError(`quick_check: ${check}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function checkHeader(file: string): void {
  const header = Buffer.alloc(SQLITE_HEADER.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (!header.equals(SQLITE_HEADER)) throw new CorruptionError('not an SQLite database (bad header)');
}

/** SQLITE_CORRUPT*, SQLITE_NOTADB or a failed header/quick_check: the file is damaged, not merely busy or full. */
export function isCorruption(err: unknown): boolean {
  if (err instanceof CorruptionError) return true;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code === 'SQLITE_NOTADB' || code.startsWith('SQLITE_CORRUPT'));
}

/** Rename the file and its -wal/-shm to `<file>.corrupt-<time>[-wal|-shm]`; returns the new name. */
function moveAside(file: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  let target = `${file}.corrupt-${stamp}`;
  for (let n = 1; existsSync(target); n++) target = `${file}.corrupt-${stamp}-${n}`;
  for (const suffix of ['', '-wal', '-shm']) {
    if (existsSync(file + suffix)) renameSync(file + suffix, target + suffix);
  }
  return target;
}

export { CorruptionError };
