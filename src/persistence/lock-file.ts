/**
 * A pid lock file that keeps two brokers off one data directory.
 *
 * The file holds JSON `{ pid, startTime, host }` and is created atomically
 * (written under a temporary name, then hard-linked into place, which fails if
 * it exists), so a reader never sees a half-written lock.
 *
 * A lock is stale, and is taken over, when its holder is gone:
 * - its pid no longer exists (the holder was SIGKILLed or crashed), or
 * - the pid exists but started at another time (`/proc/<pid>/stat` field 22,
 *   Linux), i.e. the pid was reused after the holder died, or
 * - the pid is this process's own but this process does not hold the lock:
 *   a restarted container often gets the same pid (1) as its previous life.
 * A lock held by this process (another open instance) or a live process is
 * refused with ERR_STORAGE_LOCKED naming the pid and the file.
 */
import { closeSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ternError } from '../errors.js';

interface LockContent {
  pid: number;
  startTime: string | null;
  host: string;
}

/** Lock paths held by this process. */
const held = new Set<string>();

export class LockFile {
  readonly path: string;
  readonly #content: string;

  private constructor(path: string, content: string) {
    this.path = path;
    this.#content = content;
  }

  /** Takes the lock at `path` or throws ERR_STORAGE_LOCKED / ERR_STORAGE_OPEN. */
  static acquire(path: string): LockFile {
    const full = resolve(path);
    if (held.has(full)) throw locked(full, process.pid, 'another instance in this process');
    const content = JSON.stringify({
      pid: process.pid,
      startTime: processStartTime(process.pid),
      host: hostname(),
    } satisfies LockContent);
    const tmp = `${full}.${process.pid}.${Date.now()}.tmp`;
    try {
      writeFileExclusive(tmp, content);
    } catch (err) {
      throw ternError('ERR_STORAGE_OPEN', `cannot write lock file ${tmp}: ${(err as Error).message}`, { cause: err });
    }
    try {
      // Two attempts: the second follows the removal of a stale lock.
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(tmp, full);
          held.add(full);
          return new LockFile(full, content);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
            throw ternError('ERR_STORAGE_OPEN', `cannot create lock file ${full}: ${(err as Error).message}`, {
              cause: err,
            });
          }
        }
        const holder = readLock(full);
        if (holder !== null && isAlive(holder)) throw locked(full, holder.pid, `host ${holder.host}`);
        try {
          unlinkSync(full);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      throw locked(full, readLock(full)?.pid ?? -1, 'lock file reappeared while taking over a stale lock');
    } finally {
      unlinkSync(tmp);
    }
  }

  /** Removes the lock file if it is still ours; idempotent. */
  release(): void {
    if (!held.delete(this.path)) return;
    try {
      if (readFileSync(this.path, 'utf8') === this.#content) unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function writeFileExclusive(path: string, content: string): void {
  const fd = openSync(path, 'wx');
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

/** The lock's content, or null when the file is gone or unreadable (treated as stale). */
function readLock(path: string): LockContent | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return null;
    return {
      pid: parsed.pid,
      startTime: typeof parsed.startTime === 'string' ? parsed.startTime : null,
      host: typeof parsed.host === 'string' ? parsed.host : '?',
    };
  } catch {
    return null;
  }
}

function isAlive(holder: LockContent): boolean {
  // Our own pid: only a lock this process holds is live (checked by the caller).
  if (holder.pid === process.pid) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (holder.startTime === null) return true;
  const now = processStartTime(holder.pid);
  return now === null || now === holder.startTime;
}

/** Start time of `pid` in clock ticks since boot (Linux), or null where /proc is missing. */
function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null; // field 22 overall
  } catch {
    return null;
  }
}

function locked(path: string, pid: number, detail: string): Error {
  return ternError('ERR_STORAGE_LOCKED', `${path} is held by pid ${pid} (${detail})`);
}
