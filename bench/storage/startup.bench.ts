/**
 * Start-up time and memory against store size (SQLite backend); one JSON
 * line per result (P10).
 *
 *   node --import tsx bench/storage/startup.bench.ts [--quick] [--keep DIR]
 *
 * `--keep DIR` builds the stores in DIR and leaves them there.
 *
 * Stores are built directly through the persistence API: R retained messages
 * (64-byte payloads on `site/<i % 100>/device/<i>/state`) and S persistent
 * sessions, each with one subscription (`cmd/<client id>/#`) and Q queued QoS 1
 * messages. Each store is then opened by a fresh child process
 * (startup-child.ts) that measures createBroker() + listen(), its RSS and V8
 * heap before and after, and two retained lookups (one topic, and a
 * wildcard over 1/100 of the set), after a clean close and after an unclean
 * one (which adds PRAGMA quick_check).
 *
 * Shapes: --quick 10k retained, 1k sessions (and both); otherwise the issue's
 * target, 1M retained and 100k sessions (and both), plus 100k retained and
 * 10k sessions.
 */
import { execFileSync, execSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import type { StorageOp } from '../../src/persistence/persistence.js';
import { DB_FILE, SqlitePersistence } from '../../src/persistence/sqlite.js';

const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const keepAt = argv.includes('--keep') ? argv[argv.indexOf('--keep') + 1] : undefined;
const PAYLOAD = Buffer.alloc(64, 0x61);
const CHILD = join(import.meta.dirname, 'startup-child.ts');

const meta = {
  sha: gitSha(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
};

function gitSha(): string {
  try {
    return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'storage-startup', ...result, ...meta })}\n`);
}

interface StoreShape {
  retained: number;
  sessions: number;
  /** Queued QoS 1 messages per session. */
  queued: number;
}

/** Adds `shape` to the store in `dir` (message ids continue from the store's last). */
async function grow(dir: string, shape: StoreShape, sessionOffset: number): Promise<void> {
  const p = new SqlitePersistence({ path: dir });
  await p.open();
  const now = Date.now();
  let id = await p.lastMessageId();
  let ops: StorageOp[] = [];
  const flush = async (force = false): Promise<void> => {
    if (ops.length >= 20_000 || (force && ops.length > 0)) {
      await p.commit(ops);
      ops = [];
    }
  };
  for (let i = 0; i < shape.retained; i++) {
    ops.push({
      type: 'putRetained',
      message: { id: ++id, topic: `site/${i % 100}/device/${i}/state`, payload: PAYLOAD, qos: 1, retain: true, createdAt: now },
    });
    await flush();
  }
  for (let s = sessionOffset; s < sessionOffset + shape.sessions; s++) {
    const clientId = `device-${s}`;
    ops.push({
      type: 'putSession',
      session: { clientId, protocolLevel: 4, expiryInterval: 0xffffffff, disconnectedAt: now, createdAt: now, username: `user-${s}` },
    });
    ops.push({
      type: 'putSubscription',
      clientId,
      subscription: { filter: `cmd/${clientId}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
    });
    for (let q = 1; q <= shape.queued; q++) {
      const message = { id: ++id, topic: `cmd/${clientId}/x`, payload: PAYLOAD, qos: 1 as const, retain: false, createdAt: now };
      ops.push({ type: 'putMessage', message });
      ops.push({ type: 'putOutbound', clientId, entry: { seq: q, messageId: message.id, qos: 1, state: 'queued' } });
    }
    await flush();
  }
  await flush(true);
  await p.close();
}

/** Marks the store as not cleanly closed, as a crash leaves it. */
function markUnclean(dir: string): void {
  const db = new Database(join(dir, DB_FILE));
  db.prepare("UPDATE meta SET value = 0 WHERE key = 'clean_shutdown'").run();
  db.close();
}

interface ChildResult {
  listenMs: number;
  sessions: number;
  rssBeforeMB: number;
  rssAfterMB: number;
  heapBeforeMB: number;
  heapAfterMB: number;
  getRetainedMs: number;
  matchRetainedMs: number;
  matched: number;
}

function openInChild(dir: string): ChildResult {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', CHILD, dir], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
}

async function measure(dir: string, shape: StoreShape, buildMs: number): Promise<void> {
  const fileMB = Math.round((statSync(join(dir, DB_FILE)).size / 1048576) * 10) / 10;
  openInChild(dir); // warm the page cache once
  for (const shutdown of ['clean', 'unclean'] as const) {
    if (shutdown === 'unclean') markUnclean(dir);
    emit({ case: 'startup', ...shape, shutdown, ...openInChild(dir), fileMB, buildMs });
  }
}

const root = keepAt ?? mkdtempSync(join(tmpdir(), 'tern-bench-startup-'));
mkdirSync(root, { recursive: true });
let dirs = 0;

/** Builds a store of `shape` in a new directory and measures it (the directory is removed unless --keep). */
async function run(shape: StoreShape): Promise<void> {
  const dir = join(root, `store-${++dirs}`);
  const t0 = performance.now();
  await grow(dir, shape, 0);
  await measure(dir, shape, Math.round(performance.now() - t0));
  if (keepAt === undefined) rmSync(dir, { recursive: true, force: true });
}

try {
  const R = quick ? 10_000 : 1_000_000;
  const S = quick ? 1000 : 100_000;
  await run({ retained: 0, sessions: 0, queued: 0 });
  if (!quick) {
    await run({ retained: R / 10, sessions: 0, queued: 0 });
    await run({ retained: 0, sessions: S / 10, queued: 2 });
  }
  await run({ retained: R, sessions: 0, queued: 0 });
  await run({ retained: 0, sessions: S, queued: 2 });
  // Both at once: the retained store grown by the sessions (built once, measured as one store).
  const dir = join(root, `store-${++dirs}`);
  const t0 = performance.now();
  await grow(dir, { retained: R, sessions: 0, queued: 0 }, 0);
  await grow(dir, { retained: 0, sessions: S, queued: 2 }, 0);
  await measure(dir, { retained: R, sessions: S, queued: 2 }, Math.round(performance.now() - t0));
} finally {
  if (keepAt === undefined) rmSync(root, { recursive: true, force: true });
}
