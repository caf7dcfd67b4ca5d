/**
 * Persistence benchmarks; one JSON line per result (P10).
 *
 *   node --import tsx bench/persistence.bench.ts [--quick]
 *
 * 1. commit-throughput: WriteQueue group commits of a QoS 1 publish mix, each
 *    submission = putMessage + FANOUT putOutbound (one per subscriber) +
 *    FANOUT deleteOutbound (the PUBACKs of an older delivery), with
 *    CONCURRENCY submissions in flight (many publishing clients). Backends:
 *    memory, sqlite durability normal, sqlite durability full, and, as the
 *    baseline group commit is measured against, sqlite full committing each
 *    publish alone.
 * 2. open-time: SqlitePersistence.open() on stores of 10k and 100k retained
 *    messages (+ 1 session with a subscription per 10 retained), after a clean
 *    close and after an unclean one (which adds PRAGMA quick_check), then the
 *    time of a prefix wildcard lookup.
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { MemoryPersistence } from '../src/persistence/memory.js';
import type { Persistence, StorageOp } from '../src/persistence/persistence.js';
import { DB_FILE, SqlitePersistence } from '../src/persistence/sqlite.js';
import { WriteQueue } from '../src/persistence/write-queue.js';

const quick = process.argv.includes('--quick');
const DURATION_MS = quick ? 300 : 1500;
const FANOUT = 5;
const CONCURRENCY = 64;
/** Deliveries kept unacknowledged per subscriber. */
const WINDOW = 50;
const PAYLOAD = Buffer.alloc(128, 0x61);

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
  process.stdout.write(`${JSON.stringify({ bench: 'persistence', ...result, ...meta })}\n`);
}

const root = mkdtempSync(join(tmpdir(), 'tern-bench-persistence-'));
let dirs = 0;
const newDir = (): string => join(root, `store-${++dirs}`);

async function throughput(backend: string, p: Persistence, grouped: boolean): Promise<void> {
  await p.open();
  const setup: StorageOp[] = [];
  for (let s = 0; s < FANOUT; s++) {
    setup.push({
      type: 'putSession',
      session: { clientId: `sub-${s}`, protocolLevel: 5, expiryInterval: 3600, disconnectedAt: null, createdAt: 0 },
    });
  }
  await p.commit(setup);
  let commits = 0;
  const counting = {
    commit: (ops: readonly StorageOp[]): Promise<void> => {
      commits++;
      return p.commit(ops);
    },
  };
  const q = new WriteQueue(counting);
  let nextId = 0;
  let publishes = 0;
  let ops = 0;
  const start = performance.now();
  const deadline = start + DURATION_MS;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const id = ++nextId;
      const batch: StorageOp[] = [
        {
          type: 'putMessage',
          message: { id, topic: `sensors/${id % 1000}/temp`, payload: PAYLOAD, qos: 1, retain: false, createdAt: Date.now() },
        },
      ];
      for (let s = 0; s < FANOUT; s++) {
        batch.push({ type: 'putOutbound', clientId: `sub-${s}`, entry: { seq: id, messageId: id, qos: 1, state: 'queued' } });
      }
      if (id > WINDOW) {
        for (let s = 0; s < FANOUT; s++) batch.push({ type: 'deleteOutbound', clientId: `sub-${s}`, seq: id - WINDOW });
      }
      await (grouped ? q.submit(batch) : counting.commit(batch));
      publishes++;
      ops += batch.length;
    }
  };
  await Promise.all(Array.from({ length: grouped ? CONCURRENCY : 1 }, worker));
  const seconds = (performance.now() - start) / 1000;
  await p.close();
  emit({
    case: 'commit-throughput',
    backend,
    grouped,
    fanout: FANOUT,
    concurrency: grouped ? CONCURRENCY : 1,
    ops_per_s: Math.round(ops / seconds),
    publishes_per_s: Math.round(publishes / seconds),
    commits_per_s: Math.round(commits / seconds),
    avg_ops_per_commit: Math.round(ops / commits),
  });
}

async function openTime(retained: number): Promise<void> {
  const dir = newDir();
  const fill = new SqlitePersistence({ path: dir });
  await fill.open();
  const t0 = performance.now();
  const CHUNK = 5000;
  for (let i = 0; i < retained; i += CHUNK) {
    const ops: StorageOp[] = [];
    for (let j = i; j < Math.min(retained, i + CHUNK); j++) {
      ops.push({
        type: 'putRetained',
        message: { id: j + 1, topic: `sensors/${j % 1000}/${j}`, payload: PAYLOAD, qos: 1, retain: true, createdAt: j },
      });
      if (j % 10 === 0) {
        const clientId = `client-${j}`;
        ops.push({
          type: 'putSession',
          session: { clientId, protocolLevel: 5, expiryInterval: 3600, disconnectedAt: j, createdAt: j },
        });
        ops.push({
          type: 'putSubscription',
          clientId,
          subscription: { filter: `cmd/${j}/#`, qos: 1, noLocal: false, retainAsPublished: false, retainHandling: 0 },
        });
      }
    }
    await fill.commit(ops);
  }
  const fillMs = performance.now() - t0;
  await fill.close();

  for (const shutdown of ['clean', 'unclean'] as const) {
    if (shutdown === 'unclean') {
      const raw = new Database(join(dir, DB_FILE));
      raw.prepare("UPDATE meta SET value = 0 WHERE key = 'clean_shutdown'").run();
      raw.close();
    }
    const p = new SqlitePersistence({ path: dir });
    const o0 = performance.now();
    await p.open();
    const openMs = performance.now() - o0;
    const m0 = performance.now();
    let matched = 0;
    for await (const _ of p.matchRetained('sensors/42/#')) matched++;
    const matchMs = performance.now() - m0;
    const s0 = performance.now();
    const stats = await p.retainedStats();
    const statsMs = performance.now() - s0;
    await p.close();
    emit({
      case: 'open-time',
      retained,
      sessions: Math.ceil(retained / 10),
      shutdown,
      fill_ms: Math.round(fillMs),
      open_ms: +openMs.toFixed(2),
      match_prefix_ms: +matchMs.toFixed(2),
      matched,
      stats_ms: +statsMs.toFixed(3),
      stats_count: stats.count,
    });
  }
}

try {
  await throughput('memory', new MemoryPersistence(), true);
  await throughput('sqlite-normal', new SqlitePersistence({ path: newDir(), durability: 'normal' }), true);
  await throughput('sqlite-full', new SqlitePersistence({ path: newDir(), durability: 'full' }), true);
  await throughput('sqlite-full', new SqlitePersistence({ path: newDir(), durability: 'full' }), false);
  for (const n of quick ? [10_000] : [10_000, 100_000]) await openTime(n);
} finally {
  rmSync(root, { recursive: true, force: true });
}
