/**
 * Durable storage benchmarks, end to end through the broker; one JSON line
 * per result (P10).
 *
 *   node --import tsx bench/storage/persistent-qos1.bench.ts [--quick] [--in-process]
 *        [--pairs N] [--duration S] [--window W] [--rounds R]
 *
 * 1. persistent-qos1: N publishers -> N persistent subscribers (v5, session
 *    expiry 300 s, one topic per pair), QoS 1, 64-byte payloads. Each
 *    publisher keeps W messages unacknowledged and at most 2W not yet
 *    delivered, so queues stay short and the figure is the broker's steady
 *    rate. Every delivery to a persistent session is stored (putOutbound)
 *    and forgotten on PUBACK, and every publish is acknowledged only after
 *    its commit. Backends: memory (the baseline), sqlite durability normal,
 *    sqlite durability full, interleaved over R rounds (default 3); the
 *    summary's `ratio` = median deliveries/s over memory's (target >= 0.7). The broker runs as a child process (its own core) unless
 *    --in-process; the clients are Tern's own (src/client).
 * 2. startup: stores built directly through the persistence API (10k and
 *    100k retained messages; 10k sessions with a subscription and 2 queued
 *    messages each), then the time of createBroker() + listen() on them,
 *    after a clean close and after an unclean one (which adds quick_check).
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { createBroker } from '../../src/broker/broker.js';
import { MqttClient } from '../../src/client/index.js';
import type { PublishCallback } from '../../src/client/index.js';
import type { StorageOp } from '../../src/persistence/persistence.js';
import { DB_FILE, SqlitePersistence } from '../../src/persistence/sqlite.js';
import { BrokerProcess, stablePort } from '../../test/helpers/broker-process.js';

const argv = process.argv.slice(2);
const flag = (name: string): boolean => argv.includes(name);
const option = (name: string, fallback: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : fallback;
};
const quick = flag('--quick');
const inProcess = flag('--in-process');
const PAIRS = option('--pairs', 10);
const DURATION_S = option('--duration', quick ? 2 : 5);
const WARMUP_S = quick ? 0.5 : 1;
const WINDOW = option('--window', 32);
const ROUNDS = option('--rounds', quick ? 1 : 3);
const PAYLOAD = Buffer.alloc(64, 0x61);

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
  process.stdout.write(`${JSON.stringify({ bench: 'storage', ...result, ...meta })}\n`);
}

const root = mkdtempSync(join(tmpdir(), 'tern-bench-storage-'));
const cleanups: Array<() => unknown> = [];
const hooks = { after: (fn: () => unknown): void => void cleanups.push(fn) };
let dirs = 0;
const newDir = (): string => join(root, `store-${++dirs}`);

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : Math.round((sorted[mid - 1]! + sorted[mid]!) / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// 1. persistent QoS 1 throughput

interface Target {
  backend: 'memory' | 'sqlite';
  durability: 'normal' | 'full';
}

interface Running {
  port: number;
  stop(): Promise<void>;
}

async function startBroker(target: Target): Promise<Running> {
  const dataDir = newDir();
  if (inProcess) {
    const port = await stablePort();
    const broker = createBroker({
      listeners: [{ type: 'tcp', host: '127.0.0.1', port }],
      storage: { backend: target.backend, path: dataDir, durability: target.durability },
      log: { level: 'warn' },
    });
    await broker.listen();
    return { port, stop: () => broker.close() };
  }
  const proc = await BrokerProcess.start(hooks, { backend: target.backend, durability: target.durability, dataDir });
  return {
    port: proc.port,
    stop: async () => {
      await proc.stop();
    },
  };
}

/** One publisher -> one persistent subscriber, flow-controlled by acks and deliveries. */
class Pair {
  readonly topic: string;
  readonly pub: MqttClient;
  readonly sub: MqttClient;
  sent = 0;
  acked = 0;
  delivered = 0;
  errors = 0;
  stopped = false;
  readonly #onAck: PublishCallback = (err) => {
    if (err === null) this.acked++;
    else this.errors++;
    this.fill();
  };

  constructor(port: number, index: number, tag: string) {
    this.topic = `bench/storage/${index}`;
    const common = { host: '127.0.0.1', port, protocolLevel: 5 as const, connectTimeoutMs: 10_000 };
    this.sub = new MqttClient({ ...common, clientId: `${tag}-s${index}`, clean: false, properties: { sessionExpiryInterval: 300 } });
    this.pub = new MqttClient({ ...common, clientId: `${tag}-p${index}`, clean: false, properties: { sessionExpiryInterval: 300 } });
    this.sub.on('message', () => {
      this.delivered++;
      this.fill();
    });
  }

  async connect(): Promise<void> {
    await this.sub.connect();
    const [granted] = await this.sub.subscribe(this.topic, { qos: 1 });
    if (granted !== 1) throw new Error(`subscribe ${this.topic}: ${granted}`);
    await this.pub.connect();
  }

  fill(): void {
    while (!this.stopped && this.sent - this.acked < WINDOW && this.sent - this.delivered < 2 * WINDOW) {
      this.sent++;
      this.pub.publishWithCallback(this.topic, PAYLOAD, 1, false, undefined, this.#onAck);
    }
  }
}

async function throughput(target: Target): Promise<{ acksPerS: number; deliveriesPerS: number }> {
  const broker = await startBroker(target);
  const tag = `bench-${process.pid}-${dirs}`;
  const pairs = Array.from({ length: PAIRS }, (_, i) => new Pair(broker.port, i + 1, tag));
  try {
    for (const p of pairs) await p.connect();
    for (const p of pairs) p.fill();
    await sleep(WARMUP_S * 1000);
    const a0 = pairs.reduce((n, p) => n + p.acked, 0);
    const d0 = pairs.reduce((n, p) => n + p.delivered, 0);
    const t0 = performance.now();
    await sleep(DURATION_S * 1000);
    const secs = (performance.now() - t0) / 1000;
    const acks = pairs.reduce((n, p) => n + p.acked, 0) - a0;
    const deliveries = pairs.reduce((n, p) => n + p.delivered, 0) - d0;
    const errors = pairs.reduce((n, p) => n + p.errors, 0);
    for (const p of pairs) p.stopped = true;
    const result = { acksPerS: Math.round(acks / secs), deliveriesPerS: Math.round(deliveries / secs) };
    emit({
      case: 'persistent-qos1',
      broker: inProcess ? 'in-process' : 'child',
      backend: target.backend,
      durability: target.backend === 'memory' ? null : target.durability,
      pairs: PAIRS,
      window: WINDOW,
      durationS: Math.round(secs * 100) / 100,
      ...result,
      errors,
    });
    return result;
  } finally {
    await Promise.all(pairs.flatMap((p) => [p.pub.end().catch(() => {}), p.sub.end().catch(() => {})]));
    for (const p of pairs) {
      p.pub.destroy();
      p.sub.destroy();
    }
    await broker.stop();
  }
}

// ---------------------------------------------------------------------------
// 2. start-up time against store size

interface StoreShape {
  retained: number;
  sessions: number;
  /** Queued QoS 1 messages per session. */
  queued: number;
}

async function buildStore(dir: string, shape: StoreShape): Promise<void> {
  const p = new SqlitePersistence({ path: dir });
  await p.open();
  const now = Date.now();
  let id = 0;
  let ops: StorageOp[] = [];
  const flush = async (force = false): Promise<void> => {
    if (ops.length >= 5000 || (force && ops.length > 0)) {
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
  for (let s = 0; s < shape.sessions; s++) {
    const clientId = `device-${s}`;
    ops.push({ type: 'putSession', session: { clientId, protocolLevel: 4, expiryInterval: 0xffffffff, disconnectedAt: now, createdAt: now } });
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

async function timeListen(dir: string): Promise<{ listenMs: number; sessions: number }> {
  const t0 = performance.now();
  const broker = createBroker({
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'sqlite', path: dir },
    log: { level: 'silent' },
  });
  await broker.listen();
  const listenMs = performance.now() - t0;
  const sessions = broker.core.sessions.size;
  await broker.close();
  return { listenMs: Math.round(listenMs * 10) / 10, sessions };
}

async function startup(shape: StoreShape): Promise<void> {
  const dir = newDir();
  const b0 = performance.now();
  await buildStore(dir, shape);
  const buildMs = Math.round(performance.now() - b0);
  const fileMB = Math.round((statSync(join(dir, DB_FILE)).size / 1048576) * 10) / 10;
  await timeListen(dir); // warm the page cache and the module graph once
  for (const shutdown of ['clean', 'unclean'] as const) {
    if (shutdown === 'unclean') markUnclean(dir);
    const { listenMs, sessions } = await timeListen(dir);
    emit({ case: 'startup', ...shape, shutdown, listenMs, restoredSessions: sessions, fileMB, buildMs });
  }
  rmSync(dir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------

try {
  // Rounds interleave the backends, so load from elsewhere on the machine hits them alike;
  // the ratio is of the medians.
  const targets: Target[] = [
    { backend: 'memory', durability: 'normal' },
    { backend: 'sqlite', durability: 'normal' },
    { backend: 'sqlite', durability: 'full' },
  ];
  const runs = targets.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, target] of targets.entries()) runs[i]!.push((await throughput(target)).deliveriesPerS);
  }
  const medians = runs.map(median);
  for (const [i, target] of targets.entries()) {
    emit({
      case: 'persistent-qos1-summary',
      backend: target.backend,
      durability: target.backend === 'memory' ? null : target.durability,
      rounds: ROUNDS,
      medianDeliveriesPerS: medians[i],
      runs: runs[i],
      ratio: Math.round((medians[i]! / Math.max(1, medians[0]!)) * 1000) / 1000,
      target: target.backend === 'memory' ? null : 0.7,
    });
  }
  const k = quick ? 1000 : 10_000;
  await startup({ retained: 0, sessions: 0, queued: 0 });
  await startup({ retained: k, sessions: 0, queued: 0 });
  await startup({ retained: 10 * k, sessions: 0, queued: 0 });
  await startup({ retained: 0, sessions: k, queued: 2 });
  await startup({ retained: 10 * k, sessions: k, queued: 2 });
} finally {
  for (const fn of cleanups.reverse()) await fn();
  rmSync(root, { recursive: true, force: true });
}
