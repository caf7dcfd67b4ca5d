/**
 * Cluster benchmark (issue #9): what clustering through Redis costs.
 *
 *   node --import tsx bench/cluster.bench.ts [--quick] [--json]
 *   npm run bench -- --only cluster             (the same, through bench/run.ts)
 *
 * Spawns a real `redis-server` (free port, `--save '' --appendonly no`) and
 * Tern nodes as child processes (`[storage] backend = "redis"`,
 * `[cluster] enabled = true`, `[sys] interval = 0`: $SYS writes retained
 * messages to Redis every 10 s, which would land in some windows and not
 * others). This process is the load generator: Tern's own client and the
 * windowed publisher of `tern bench` (src/bench/publisher.ts), PAIRS QoS 1
 * publisher/subscriber pairs on distinct topics, 64-byte payloads, at most
 * WINDOW messages per publisher unacknowledged or undelivered.
 *
 * Runs (each: WARMUP of load, then a measured window of DURATION):
 *   idle-1      one node, clients connected, nothing published: Redis background
 *   one-node    every client on the one node (the cluster of one is the baseline)
 *   idle-3      three nodes, clients connected, nothing published
 *   cross       three nodes, publisher of pair i on node i%3, its subscriber on
 *               node (i+1)%3: every message crosses nodes (worst case)
 *   cross-paced the same at a fixed PACED_RATE msg/s in total (Redis commands per
 *               message at a moderate rate, where batches are small)
 *   same        three nodes, pair i wholly on node i%3: no message crosses
 *               nodes, while two other nodes are up (best case)
 *
 * Redis traffic: `INFO commandstats` (total calls, our own INFO left out)
 * at the start and end of each window; the idle runs give the background per
 * second (heartbeats, XREAD BLOCK time-outs), subtracted pro rata. In the
 * cross runs every message is forwarded to exactly one other node, so
 * forwarded messages = deliveries. CPU of every process comes from
 * /proc/PID/stat (bench/compare/proc.ts).
 *
 * The output is a table; `--json` prints one JSON line (the figures, the
 * git commit and the machine) on stdout instead, as `npm run bench` collects
 * it, and the table on stderr.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Histogram } from '../src/bench/histogram.js';
import { Publisher } from '../src/bench/publisher.js';
import { nowMs, readIndex, readStamp } from '../src/bench/stamp.js';
import { Stats } from '../src/bench/stats.js';
import { MqttClient } from '../src/client/client.js';
import type { PublishPacket } from '../src/codec/types.js';
import { freePort, readCpuSeconds, ROOT, ternCli } from './compare/proc.js';

const quick = process.argv.includes('--quick');
const json = process.argv.includes('--json');
const DURATION_S = quick ? 2 : 5;
const WARMUP_S = quick ? 0.5 : 1;
const PAIRS = 16;
const WINDOW = 64;
const PAYLOAD_BYTES = 64;
const PACED_RATE = 1000;
const PREFIX = 'tbench:';

const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

// ---- processes and cleanup ----

interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
  /** Set when the spawn itself failed (e.g. ENOENT: not installed). */
  error: Error | null;
}

const children: Child[] = [];
const tmp = mkdtempSync(join(os.tmpdir(), 'tern-bench-cluster-'));

function tail(file: string, chars = 2000): string {
  try {
    return readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

function exited(c: ChildProcess): boolean {
  return c.pid === undefined || c.exitCode !== null || c.signalCode !== null;
}

function waitExit(c: ChildProcess, ms: number): Promise<boolean> {
  if (exited(c)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    c.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function spawnLogged(name: string, command: string, args: string[]): Child {
  const logFile = join(tmp, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const child: Child = { name, proc, logFile, error: null };
  proc.on('error', (err) => (child.error = err));
  children.push(child);
  return child;
}

/** SIGTERM (nodes leave the cluster cleanly), SIGKILL after `graceMs`. */
async function stopChild(c: Child, graceMs: number): Promise<void> {
  if (!exited(c.proc)) {
    c.proc.kill('SIGTERM');
    if (!(await waitExit(c.proc, graceMs))) {
      c.proc.kill('SIGKILL');
      await waitExit(c.proc, 2000);
    }
  }
  children.splice(children.indexOf(c), 1);
}

let cleaned = false;

/** Nodes first (they talk to Redis on the way out), then Redis, then the temp dir. */
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  const nodes = children.filter((c) => c.name !== 'redis');
  await Promise.all(nodes.map((c) => stopChild(c, 5000)));
  await Promise.all([...children].map((c) => stopChild(c, 2000)));
  rmSync(tmp, { recursive: true, force: true });
}

// Last resort when the process ends without cleanup() (an uncaught error, exit()).
process.on('exit', () => {
  for (const c of children) if (!exited(c.proc)) c.proc.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`cluster bench: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

/**
 * Resolves with the first match of `pattern` in the child's log, so the bench
 * knows the child itself listens (a port probe could reach another process
 * that took the port first); rejects when the child exits or on timeout.
 */
async function waitForLog(c: Child, pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = pattern.exec(tail(c.logFile, Infinity));
    if (m !== null) return m;
    if (exited(c.proc)) {
      await sleep(20); // a spawn that failed reports why on a later tick
      if (c.error !== null) throw new Error(`${c.name}: ${c.error.message}`);
      throw new Error(`${c.name} exited (${c.proc.exitCode ?? c.proc.signalCode}) before it was ready\n${tail(c.logFile)}`);
    }
    if (Date.now() > deadline) throw new Error(`${c.name} not ready within ${timeoutMs} ms\n${tail(c.logFile)}`);
    await sleep(50);
  }
}

async function startRedis(): Promise<{ url: string; pid: number; version: string }> {
  // The free port may be taken before redis-server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const c = spawnLogged('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', tmp]);
    try {
      const ready = await waitForLog(c, /Redis version=(\S+),|Ready to accept connections/, 10_000);
      await waitForLog(c, /Ready to accept connections/, 10_000);
      return { url: `redis://127.0.0.1:${port}`, pid: c.proc.pid!, version: ready[1] ?? 'unknown' };
    } catch (err) {
      await stopChild(c, 1000);
      if (c.error !== null) throw new Error(`redis-server: ${c.error.message} (install it: apt-get install -y redis-server)`);
      if (attempt === 3) throw err;
    }
  }
}

interface TernNode {
  id: string;
  port: number;
  pid: number;
  child: Child;
}

/** A node on a port of its own choosing (port 0), read from its "listening on" log line. */
async function startNode(id: string, redisUrl: string): Promise<TernNode> {
  const conf = join(tmp, `${id}.toml`);
  writeFileSync(
    conf,
    [
      '[[listeners]]',
      'host = "127.0.0.1"',
      'port = 0',
      '[storage]',
      'backend = "redis"',
      `redis_url = "${redisUrl}"`,
      `redis_prefix = "${PREFIX}"`,
      '[cluster]',
      'enabled = true',
      `node_id = "${id}"`,
      '[sys]',
      'interval = 0',
      '[log]',
      // info: the listening address; Tern logs nothing per connection or message at info.
      'level = "info"',
      'format = "json"',
      '',
    ].join('\n'),
  );
  const child = spawnLogged(id, process.execPath, [...ternCli(), '-c', conf]);
  const m = await waitForLog(child, /listening on tcp:\/\/127\.0\.0\.1:(\d+)/, 60_000);
  return { id, port: Number(m[1]), pid: child.proc.pid!, child };
}

/** The cluster's members in Redis must be exactly `ids` before a phase starts. */
async function expectMembers(redis: Redis, ids: readonly string[]): Promise<void> {
  const members = (await redis.smembers(`${PREFIX}cluster:nodes`)).sort();
  if (members.join(',') !== [...ids].sort().join(',')) throw new Error(`cluster members are [${members.join(', ')}], expected [${ids.join(', ')}]`);
}

// ---- Redis command counts ----

type Calls = Map<string, number>;

async function commandCalls(redis: Redis): Promise<Calls> {
  const text = await redis.info('commandstats');
  const calls: Calls = new Map();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    // Our own INFO calls are not the cluster's traffic.
    if (m[1] !== 'info') calls.set(m[1]!, Number(m[2]));
  }
  return calls;
}

function diff(after: Calls, before: Calls): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [cmd, n] of after) {
    const d = n - (before.get(cmd) ?? 0);
    if (d > 0) out[cmd] = d;
  }
  return out;
}

const total = (calls: Record<string, number>): number => Object.values(calls).reduce((a, b) => a + b, 0);

// ---- load ----

interface Pair {
  pubNode: TernNode;
  subNode: TernNode;
}

interface Load {
  stats: Stats;
  publishers: Publisher[];
  clients: MqttClient[];
}

function client(node: TernNode, clientId: string): MqttClient {
  return new MqttClient({ host: '127.0.0.1', port: node.port, clientId, clean: true, keepalive: 60, protocolLevel: 4, connectTimeoutMs: 10_000 });
}

async function connectPairs(tag: string, pairs: readonly Pair[]): Promise<Load> {
  const stats = new Stats();
  const publishers: Publisher[] = [];
  const clients: MqttClient[] = [];
  const onMessage = (p: PublishPacket): void => {
    stats.received++;
    const sentAt = readStamp(p.payload);
    if (sentAt >= 0) {
      stats.recordLatency((nowMs() - sentAt) * 1000);
      publishers[readIndex(p.payload)]?.delivered();
    }
  };
  try {
    await Promise.all(
      pairs.map(async ({ subNode }, i) => {
        const sub = client(subNode, `${tag}-s${i}`);
        clients.push(sub);
        await sub.connect();
        sub.on('close', (err) => {
          if (err !== undefined) stats.error(`${tag}-s${i}: ${err.message}`);
        });
        sub.on('message', onMessage);
        const [code] = await sub.subscribe(`bench/${tag}/${i}`, { qos: 1 });
        if (code === undefined || code >= 0x80) throw new Error(`subscription refused: 0x${(code ?? 0).toString(16)}`);
      }),
    );
    const pubs = await Promise.all(
      pairs.map(async ({ pubNode }, i) => {
        const pub = client(pubNode, `${tag}-p${i}`);
        clients.push(pub);
        await pub.connect();
        pub.on('close', (err) => {
          if (err !== undefined) stats.error(`${tag}-p${i}: ${err.message}`);
        });
        return pub;
      }),
    );
    pubs.forEach((pub, i) => {
      publishers.push(new Publisher(pub, `bench/${tag}/${i}`, i, { qos: 1, size: PAYLOAD_BYTES, window: WINDOW, deliveries: 1 }, stats));
    });
  } catch (err) {
    for (const c of clients) c.destroy();
    throw err;
  }
  // A SUBACK follows the route's announcement; give the other nodes a moment to read it.
  await sleep(300);
  return { stats, publishers, clients };
}

async function closePairs(load: Load): Promise<void> {
  for (const p of load.publishers) p.stop();
  await Promise.race([Promise.all(load.clients.map((c) => c.end().catch(() => {}))), sleep(3000)]);
  for (const c of load.clients) c.destroy();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---- one measured run ----

interface Watched {
  name: string;
  pid: number;
}

interface RunResult {
  run: string;
  nodes: number;
  /** null: unpaced (as fast as the windows allow). */
  rateTarget: number | null;
  windowS: number;
  published: number;
  delivered: number;
  deliveriesPerS: number;
  /** Messages that went from one node to another in the window. */
  forwarded: number;
  latencyMs: { p50: number; p99: number } | null;
  redisCalls: Record<string, number>;
  redisCallsTotal: number;
  /** Calls minus the idle background of as many nodes over as long a window. */
  redisCallsAboveIdle: number;
  /** Per published message (the same-node and one-node runs: should be ~0). */
  redisCallsPerMessage: number;
  /** Per forwarded message (cross runs only). */
  redisCallsPerForwarded: number | null;
  messagesPerXadd: number | null;
  /** CPU use in the window, % of one core, per process (n1.., redis, generator). */
  cpuPct: Record<string, number>;
  /**
   * CPU time of the nodes and redis-server per delivery, µs: the cost of a
   * delivery, which other load on the machine changes much less than the rate.
   */
  clusterCpuUsPerDelivery: number | null;
  /** After the drain: deliveries that never came (QoS 1: should be 0). */
  missing: number;
  errors: number;
  errorSamples: string[];
}

interface IdleResult {
  run: string;
  nodes: number;
  windowS: number;
  redisCalls: Record<string, number>;
  redisCallsPerS: number;
  cpuPct: Record<string, number>;
}

/** CPU seconds (user + system) of each watched process so far. */
function cpuNow(watched: readonly Watched[]): Map<string, number> {
  return new Map(watched.map((w) => [w.name, readCpuSeconds(w.pid) ?? 0]));
}

/** CPU seconds each process used between two readings. */
function cpuUsed(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...after].map(([name, s]) => [name, s - (before.get(name) ?? 0)]));
}

/** In % of one core over `windowS`. */
function pct(used: Record<string, number>, windowS: number): Record<string, number> {
  return Object.fromEntries(Object.entries(used).map(([name, s]) => [name, Math.round((s * 100) / windowS)]));
}

/** CPU seconds of the cluster (nodes and redis-server, not the generator). */
const clusterCpu = (used: Record<string, number>): number => Object.entries(used).reduce((n, [name, s]) => (name === 'generator' ? n : n + s), 0);

async function idle(run: string, nodes: number, redis: Redis, watched: readonly Watched[]): Promise<IdleResult> {
  log(`${run}: ${nodes} node(s), clients connected, nothing published, ${DURATION_S} s`);
  const cpu0 = cpuNow(watched);
  const before = await commandCalls(redis);
  const t0 = nowMs();
  await sleep(DURATION_S * 1000);
  const after = await commandCalls(redis);
  const windowS = (nowMs() - t0) / 1000;
  const cpu = cpuUsed(cpu0, cpuNow(watched));
  const calls = diff(after, before);
  return { run, nodes, windowS: round(windowS, 3), redisCalls: calls, redisCallsPerS: round(total(calls) / windowS, 2), cpuPct: pct(cpu, windowS) };
}

async function measure(
  run: string,
  nodes: number,
  load: Load,
  redis: Redis,
  background: IdleResult,
  watched: readonly Watched[],
  opts: { crossNode: boolean; rate: number | null },
): Promise<RunResult> {
  log(`${run}: ${nodes} node(s), ${PAIRS} pairs${opts.rate === null ? '' : ` at ${opts.rate} msg/s`}, ${WARMUP_S} s warm-up + ${DURATION_S} s`);
  const { stats, publishers } = load;
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const p of publishers) p.checkStall(now);
  }, 250);
  let ticker: NodeJS.Timeout | undefined;
  const start = nowMs();
  if (opts.rate === null) {
    for (const p of publishers) p.startUnpaced();
  } else {
    const perPublisher = opts.rate / publishers.length;
    const tick = (): void => {
      const target = Math.floor(((nowMs() - start) * perPublisher) / 1000) + 1;
      for (const p of publishers) p.sendUpTo(target);
    };
    tick();
    ticker = setInterval(tick, 10);
  }
  await sleep(WARMUP_S * 1000);

  // ---- the measured window ----
  const cpu0 = cpuNow(watched);
  const before = await commandCalls(redis);
  const t0 = nowMs();
  const sent0 = stats.sent;
  const recv0 = stats.received;
  stats.latency.reset();
  await sleep(DURATION_S * 1000);
  const sent1 = stats.sent;
  const recv1 = stats.received;
  const t1 = nowMs();
  const after = await commandCalls(redis);
  const cpu = cpuUsed(cpu0, cpuNow(watched));
  const latency = new Histogram();
  latency.merge(stats.latency);

  // ---- stop and drain ----
  clearInterval(ticker);
  clearInterval(watchdog);
  for (const p of publishers) p.stop();
  const deadline = nowMs() + 3000;
  const expected = (): number => publishers.reduce((n, p) => n + p.sent, 0);
  while (nowMs() < deadline && (publishers.some((p) => p.outstanding > 0) || stats.received < expected())) await sleep(20);

  const windowS = (t1 - t0) / 1000;
  const calls = diff(after, before);
  const callsTotal = total(calls);
  const aboveIdle = callsTotal - background.redisCallsPerS * windowS;
  const published = sent1 - sent0;
  const delivered = recv1 - recv0;
  const forwarded = opts.crossNode ? delivered : 0;
  const xadd = calls.xadd ?? 0;
  return {
    run,
    nodes,
    rateTarget: opts.rate,
    windowS: round(windowS, 3),
    published,
    delivered,
    deliveriesPerS: Math.round(delivered / windowS),
    forwarded,
    latencyMs: latency.count > 0 ? { p50: round(latency.percentile(50) / 1000, 2), p99: round(latency.percentile(99) / 1000, 2) } : null,
    redisCalls: calls,
    redisCallsTotal: callsTotal,
    redisCallsAboveIdle: Math.round(aboveIdle),
    redisCallsPerMessage: published > 0 ? round(aboveIdle / published, 4) : 0,
    redisCallsPerForwarded: forwarded > 0 ? round(aboveIdle / forwarded, 4) : null,
    messagesPerXadd: forwarded > 0 && xadd > 0 ? round(forwarded / xadd, 2) : null,
    cpuPct: pct(cpu, windowS),
    clusterCpuUsPerDelivery: delivered > 0 ? round((clusterCpu(cpu) * 1e6) / delivered, 2) : null,
    missing: Math.max(0, expected() - stats.received),
    errors: stats.errors,
    errorSamples: stats.errorSamples,
  };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

// ---- report ----

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return '';
  }
}

function machine(): Record<string, unknown> {
  return {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    loadAvgAtStart: os.loadavg().map((v) => round(v, 2)),
    ternCli: ternCli()
      .map((a) => a.replace(ROOT, ''))
      .join(' '),
  };
}

/** `v` with `digits` decimals (a rounded -0 prints as 0), or '-'. */
const fmt = (v: number | null | undefined, digits = 0): string =>
  v === null || v === undefined ? '-' : (round(v, digits) + 0).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(doc: { machine: Record<string, unknown>; idle: IdleResult[]; runs: RunResult[] }): string {
  const one = doc.runs.find((r) => r.run === 'one-node');
  const rows = [
    [
      'run',
      'nodes',
      'deliveries/s',
      'vs 1 node',
      'CPU µs/delivery',
      'vs 1 node',
      'forwarded/s',
      'Redis cmds/s above idle',
      'cmds per msg',
      'cmds per fwd msg',
      'msgs per XADD',
      'p50 ms',
      'p99 ms',
      'missing',
      'CPU % of a core (nodes | redis | generator)',
    ],
  ];
  for (const r of doc.runs) {
    const nodeCpu = Object.entries(r.cpuPct)
      .filter(([name]) => name.startsWith('n'))
      .map(([, v]) => String(v))
      .join(' ');
    rows.push([
      r.rateTarget === null ? r.run : `${r.run} (${fmt(r.rateTarget)}/s)`,
      String(r.nodes),
      fmt(r.deliveriesPerS),
      one !== undefined && r.rateTarget === null ? `${(r.deliveriesPerS / one.deliveriesPerS).toFixed(2)}x` : '-',
      fmt(r.clusterCpuUsPerDelivery, 1),
      one?.clusterCpuUsPerDelivery != null && r.clusterCpuUsPerDelivery !== null ? `${(r.clusterCpuUsPerDelivery / one.clusterCpuUsPerDelivery).toFixed(2)}x` : '-',
      r.forwarded > 0 ? fmt(r.forwarded / r.windowS) : '0',
      fmt(r.redisCallsAboveIdle / r.windowS),
      fmt(r.redisCallsPerMessage, 3),
      fmt(r.redisCallsPerForwarded, 3),
      fmt(r.messagesPerXadd, 1),
      fmt(r.latencyMs?.p50, 1),
      fmt(r.latencyMs?.p99, 1),
      String(r.missing),
      `${nodeCpu} | ${r.cpuPct.redis ?? '-'} | ${r.cpuPct.generator ?? '-'}`,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]): string => `| ${row.map((c, i) => (i === 0 || i === row.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const out = [line(rows[0]!), `|${widths.map((w, i) => (i === 0 || i === widths.length - 1 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`];
  for (const row of rows.slice(1)) out.push(line(row));
  for (const i of doc.idle) {
    out.push(`idle background, ${i.nodes} node(s): ${fmt(i.redisCallsPerS, 1)} Redis cmds/s (${Object.entries(i.redisCalls).map(([c, n]) => `${c} ${n}`).join(', ')} in ${i.windowS} s)`);
  }
  for (const r of doc.runs.filter((x) => x.forwarded > 0)) {
    const per = Object.entries(r.redisCalls)
      .sort((a, b) => b[1] - a[1])
      .map(([c, n]) => `${c} ${(n / r.forwarded).toFixed(3)}`)
      .join(', ');
    out.push(`${r.rateTarget === null ? r.run : `${r.run} (${r.rateTarget}/s)`}: Redis calls per forwarded message, idle included: ${per}`);
  }
  return `${out.join('\n')}\n`;
}

// ---- main ----

async function main(): Promise<void> {
  const info = machine();
  const cores = Number(info.cores);
  log(`cluster bench: ${PAIRS} QoS 1 pairs, ${PAYLOAD_BYTES} B, window ${WINDOW}, ${DURATION_S} s per run (+${WARMUP_S} s warm-up); tern: node ${String(info.ternCli)}`);
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  await redis.connect();
  const generator: Watched = { name: 'generator', pid: process.pid };
  const idleRuns: IdleResult[] = [];
  const runs: RunResult[] = [];
  try {
    // ---- one node ----
    const n1 = await startNode('n1', redisServer.url);
    await expectMembers(redis, ['n1']);
    let watched: Watched[] = [{ name: 'n1', pid: n1.pid }, { name: 'redis', pid: redisServer.pid }, generator];
    let load = await connectPairs('one', Array.from({ length: PAIRS }, () => ({ pubNode: n1, subNode: n1 })));
    const idle1 = await idle('idle-1', 1, redis, watched);
    idleRuns.push(idle1);
    runs.push(await measure('one-node', 1, load, redis, idle1, watched, { crossNode: false, rate: null }));
    await closePairs(load);

    // ---- three nodes ----
    const [n2, n3] = await Promise.all([startNode('n2', redisServer.url), startNode('n3', redisServer.url)]);
    const nodes = [n1, n2!, n3!];
    await expectMembers(redis, ['n1', 'n2', 'n3']);
    watched = [...nodes.map((n) => ({ name: n.id, pid: n.pid })), { name: 'redis', pid: redisServer.pid }, generator];
    load = await connectPairs('cross', Array.from({ length: PAIRS }, (_, i) => ({ pubNode: nodes[i % 3]!, subNode: nodes[(i + 1) % 3]! })));
    const idle3 = await idle('idle-3', 3, redis, watched);
    idleRuns.push(idle3);
    runs.push(await measure('cross', 3, load, redis, idle3, watched, { crossNode: true, rate: null }));
    await closePairs(load);
    load = await connectPairs('paced', Array.from({ length: PAIRS }, (_, i) => ({ pubNode: nodes[i % 3]!, subNode: nodes[(i + 1) % 3]! })));
    runs.push(await measure('cross-paced', 3, load, redis, idle3, watched, { crossNode: true, rate: PACED_RATE }));
    await closePairs(load);
    load = await connectPairs('same', Array.from({ length: PAIRS }, (_, i) => ({ pubNode: nodes[i % 3]!, subNode: nodes[i % 3]! })));
    runs.push(await measure('same', 3, load, redis, idle3, watched, { crossNode: false, rate: null }));
    await closePairs(load);
  } finally {
    redis.disconnect();
    await cleanup();
  }

  const one = runs.find((r) => r.run === 'one-node')!;
  const ratio = (name: string): number | null => {
    const r = runs.find((x) => x.run === name);
    return r === undefined || one.deliveriesPerS === 0 ? null : round(r.deliveriesPerS / one.deliveriesPerS, 3);
  };
  const note =
    `${cores} core(s): three nodes, redis-server and the generator share them, so the three-node figures show ` +
    `what clustering costs on one machine, not how a cluster scales across machines. Where other processes load the ` +
    `machine (load average above), each process gets its share of the cores and deliveries/s favours the runs with ` +
    `more processes; CPU µs per delivery (nodes + redis-server, generator left out) is the steadier figure.`;
  const doc = {
    bench: 'cluster',
    date: new Date().toISOString(),
    git: { sha: git(['rev-parse', '--short', 'HEAD']) || 'unknown', commit: git(['rev-parse', 'HEAD']), dirtyFiles: git(['status', '--porcelain']).split('\n').filter((l) => l.length > 0).length },
    machine: { ...info, redis: redisServer.version, loadAvgAtEnd: os.loadavg().map((v) => round(v, 2)) },
    options: { quick, pairs: PAIRS, qos: 1, payloadBytes: PAYLOAD_BYTES, window: WINDOW, durationS: DURATION_S, warmupS: WARMUP_S, pacedRate: PACED_RATE },
    summary: {
      oneNodeDeliveriesPerS: one.deliveriesPerS,
      crossVsOne: ratio('cross'),
      sameVsOne: ratio('same'),
      cpuPerDeliveryUs: Object.fromEntries(runs.map((r) => [r.run, r.clusterCpuUsPerDelivery])),
      redisCallsPerForwarded: runs.find((r) => r.run === 'cross')?.redisCallsPerForwarded ?? null,
      redisCallsPerForwardedPaced: runs.find((r) => r.run === 'cross-paced')?.redisCallsPerForwarded ?? null,
      redisCallsPerMessageSameNode: runs.find((r) => r.run === 'same')?.redisCallsPerMessage ?? null,
      missing: runs.reduce((n, r) => n + r.missing, 0),
    },
    note,
    idle: idleRuns,
    runs,
  };
  if (json) process.stdout.write(`${JSON.stringify(doc)}\n`);
  // With --json the table goes to stderr: stdout stays one JSON line.
  (json ? process.stderr : process.stdout).write(
    `\nTern cluster: ${PAIRS} QoS 1 pairs, ${PAYLOAD_BYTES} B payloads, window ${WINDOW}, ${DURATION_S} s windows; ` +
      `commit ${doc.git.sha}${doc.git.dirtyFiles > 0 ? ` (+${doc.git.dirtyFiles} dirty files)` : ''}; ${String(info.cpuModel)}, ` +
      `load average ${(info.loadAvgAtStart as number[]).join(' ')} at start; redis ${redisServer.version}\n` +
      `NOTE: ${note}\n\n${table(doc)}`,
  );
  const bad = runs.filter((r) => r.missing > 0 || r.errors > 0);
  for (const r of bad) log(`${r.run}: ${r.missing} missing, ${r.errors} errors ${r.errorSamples.join('; ')}`);
  if (bad.length > 0) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  log(`cluster bench failed: ${(err as Error).stack ?? String(err)}`);
  await cleanup();
  process.exitCode = 1;
}
