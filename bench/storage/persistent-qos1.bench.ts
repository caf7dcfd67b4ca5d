/**
 * Persistent-session QoS 1 throughput by storage backend, end to end through
 * the broker; one JSON line per result (P10).
 *
 *   node --import tsx bench/storage/persistent-qos1.bench.ts [--quick] [--in-process]
 *        [--pairs N] [--duration S] [--window W] [--rounds R]
 *        [--targets memory,normal,full] [--profile DIR]
 *
 * `--profile DIR` profiles each child broker (V8's sampling profiler, started
 * by cpu-profile.mjs as `node --cpu-prof` would) into DIR/<pid>.cpuprofile;
 * summarise with bench/compare/profile.ts.
 *
 * persistent-qos1: N publishers -> N persistent subscribers (v5, session
 *    expiry 300 s, one topic per pair), QoS 1, 64-byte payloads. Each
 *    publisher keeps W messages unacknowledged and at most 2W not yet
 *    delivered, so queues stay short and the figure is the broker's steady
 *    rate. Every delivery to a persistent session is a stored entry
 *    (putOutbound, forgotten on PUBACK; the write queue cancels both when
 *    the PUBACK comes before their group commits), and every publish is
 *    acknowledged only once its entries are committed or done. Backends:
 *    memory (the baseline), sqlite durability normal, sqlite durability
 *    full, interleaved over R rounds (default 3); the summary's `ratio` =
 *    median deliveries/s over memory's (target >= 0.7).
 *    The broker runs as a child process (its own core) unless --in-process;
 *    the clients are Tern's own (src/client). Each run also reports the
 *    broker's CPU use (`brokerCpuPct`, of one core) and CPU time per
 *    delivery (`brokerCpuUsPerDelivery`), read from /proc: on a shared
 *    machine the CPU cost per delivery moves much less than the rate.
 * Start-up time against store size: startup.bench.ts.
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { createBroker } from '../../src/broker/broker.js';
import { MqttClient } from '../../src/client/index.js';
import type { PublishCallback } from '../../src/client/index.js';
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
const TARGETS = (argv.includes('--targets') ? argv[argv.indexOf('--targets') + 1] ?? '' : 'memory,normal,full').split(',');
const PROFILER = pathToFileURL(join(import.meta.dirname, 'cpu-profile.mjs')).href;
const PROFILE_DIR = argv.includes('--profile') ? argv[argv.indexOf('--profile') + 1] : undefined;

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
// persistent QoS 1 throughput

interface Target {
  backend: 'memory' | 'sqlite';
  durability: 'normal' | 'full';
}

interface Running {
  port: number;
  /** The child broker's pid (undefined in process). */
  pid: number | undefined;
  stop(): Promise<void>;
}

/** CPU time (user + system) of a process so far, ms; 0 when unknown. */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime + stime, at USER_HZ 100
  } catch {
    return 0;
  }
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
    return { port, pid: undefined, stop: () => broker.close() };
  }
  const saved = process.env.NODE_OPTIONS;
  if (PROFILE_DIR !== undefined) {
    // --cpu-prof is not allowed in NODE_OPTIONS; a preloaded module starts the profiler instead.
    process.env.NODE_OPTIONS = `${saved ?? ''} --import ${PROFILER}`.trim();
    process.env.TERN_PROFILE_DIR = PROFILE_DIR;
  }
  let proc: BrokerProcess;
  try {
    proc = await BrokerProcess.start(hooks, { backend: target.backend, durability: target.durability, dataDir });
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
  return {
    port: proc.port,
    pid: proc.pid,
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
    const c0 = cpuMs(broker.pid);
    await sleep(DURATION_S * 1000);
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuMs(broker.pid) - c0;
    const brokerCpu = broker.pid === undefined ? null : Math.round(cpu / (secs * 10));
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
      brokerCpuPct: brokerCpu,
      brokerCpuUsPerDelivery: broker.pid === undefined || deliveries === 0 ? null : Math.round((cpu * 10000) / deliveries) / 10,
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

try {
  // Rounds interleave the backends, so load from elsewhere on the machine hits them alike;
  // the ratio is of the medians.
  const all: Record<string, Target> = {
    memory: { backend: 'memory', durability: 'normal' },
    normal: { backend: 'sqlite', durability: 'normal' },
    full: { backend: 'sqlite', durability: 'full' },
  };
  const targets: Target[] = TARGETS.map((name) => {
    const t = all[name];
    if (t === undefined) throw new Error(`--targets: unknown ${name} (memory, normal, full)`);
    return t;
  });
  const runs = targets.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, target] of targets.entries()) runs[i]!.push((await throughput(target)).deliveriesPerS);
  }
  const medians = runs.map(median);
  const memoryAt = targets.findIndex((t) => t.backend === 'memory');
  const baseline = memoryAt >= 0 ? medians[memoryAt]! : 0;
  for (const [i, target] of targets.entries()) {
    emit({
      case: 'persistent-qos1-summary',
      backend: target.backend,
      durability: target.backend === 'memory' ? null : target.durability,
      rounds: ROUNDS,
      medianDeliveriesPerS: medians[i],
      runs: runs[i],
      ratio: baseline > 0 ? Math.round((medians[i]! / baseline) * 1000) / 1000 : null,
      target: target.backend === 'memory' ? null : 0.7,
    });
  }
} finally {
  for (const fn of cleanups.reverse()) await fn();
  rmSync(root, { recursive: true, force: true });
}
