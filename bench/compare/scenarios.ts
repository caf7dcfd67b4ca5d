/**
 * The end-to-end scenarios: which load (one or more child processes, each a
 * `tern bench ... --json` or one of the drivers here), which brokers, and
 * how each run's raw JSON becomes the figures of the table.
 */
import type { BrokerName, Storage } from './brokers.js';
import { ternCli, tsScript } from './proc.js';

export interface LoadContext {
  port: number;
  /** MQTT protocol level of every client (Aedes speaks only 4). */
  version: 4 | 5;
  durationS: number;
  /** Connections held by the idle scenario. */
  idleConns: number;
  /** Retained messages of the subscribe storm. */
  retained: number;
}

export interface MetricDef {
  key: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
}

/** What a run saw besides the loads' output. */
export interface RunObservation {
  /** Broker RSS before the load started and its peak during the load, KiB. */
  rssBeforeKiB: number | null;
  rssPeakKiB: number | null;
}

export interface ScenarioDef {
  id: string;
  group: string;
  title: string;
  /** QoS of the scenario, for `--qos` filtering (null: not QoS-specific). */
  qos: 0 | 1 | 2 | null;
  brokers: readonly BrokerName[];
  storage: Storage;
  /** One node argv per load process, all started at once. */
  loads(ctx: LoadContext): string[][];
  metrics: readonly MetricDef[];
  /** Figures from the loads' JSON results. */
  extract(results: ReadonlyArray<Record<string, unknown>>, seen: RunObservation, ctx: LoadContext): Record<string, number | null>;
  /** Problems that make the run's figures suspect (failed connects, errors, incomplete deliveries). */
  check(results: ReadonlyArray<Record<string, unknown>>): string[];
}

const ALL: readonly BrokerName[] = ['tern', 'mosquitto', 'aedes'];

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const field = (r: Record<string, unknown> | undefined, ...path: string[]): number | null => {
  let v: unknown = r;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[k] : undefined;
  return num(v);
};
const sum = (results: ReadonlyArray<Record<string, unknown>>, ...path: string[]): number | null => {
  let total = 0;
  for (const r of results) {
    const v = field(r, ...path);
    if (v === null) return null;
    total += v;
  }
  return total;
};

/** `tern bench` argv (the scenario and its flags) for a load process. */
const bench = (ctx: LoadContext, ...args: Array<string | number>): string[] => [
  ...ternCli(),
  'bench',
  ...args.map(String),
  '-p',
  String(ctx.port),
  '-V',
  String(ctx.version),
  '--json',
  '--quiet',
];

/** The checks for a `tern bench` result. */
function benchCheck(results: ReadonlyArray<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  for (const r of results) {
    const failed = field(r, 'clients', 'failed') ?? 0;
    if (failed > 0) problems.push(`${failed} clients failed to connect`);
    const errors = field(r, 'errors') ?? 0;
    if (errors > 0) problems.push(`${errors} errors: ${JSON.stringify(r.errorSamples)}`);
    const qos = field(r, 'qos') ?? 0;
    const expected = field(r, 'expected');
    const received = field(r, 'received');
    // QoS 0 may lose messages under overload; QoS 1/2 must deliver everything.
    if (qos > 0 && expected !== null && received !== null && received < expected) {
      problems.push(`received ${received} of ${expected} expected`);
    }
  }
  return problems;
}

const RATE: MetricDef = { key: 'recvRate', label: 'deliveries/s', unit: 'msg/s', better: 'higher' };

function throughput(group: 'pairs' | 'fanout' | 'fanin', qos: 0 | 1 | 2): ScenarioDef {
  const clients = { pairs: 16, fanout: 50, fanin: 8 }[group];
  const shape = { pairs: '16 pairs', fanout: '1 -> 50', fanin: '8 -> 1' }[group];
  return {
    id: `${group}-q${qos}`,
    group,
    title: `${group} ${shape} QoS ${qos}`,
    qos,
    brokers: ALL,
    storage: 'memory',
    loads: (ctx) => [bench(ctx, group, '-c', clients, '-q', qos, '-d', ctx.durationS)],
    metrics: [RATE],
    extract: (results) => ({ recvRate: sum(results, 'recvRate'), sendRate: sum(results, 'sendRate'), p99Ms: field(results[0], 'latencyMs', 'p99Ms') }),
    check: benchCheck,
  };
}

export const SCENARIOS: readonly ScenarioDef[] = [
  ...(['pairs', 'fanout', 'fanin'] as const).flatMap((g) => ([0, 1, 2] as const).map((q) => throughput(g, q))),
  {
    id: 'pairs-q0-2gen',
    group: 'gencheck',
    title: 'pairs 16 pairs QoS 0, two generators x 8 pairs',
    qos: 0,
    brokers: ALL,
    storage: 'memory',
    loads: (ctx) => [
      bench(ctx, 'pairs', '-c', 8, '-q', 0, '-d', ctx.durationS, '-t', 'tern/bench/pairs/a%i'),
      bench(ctx, 'pairs', '-c', 8, '-q', 0, '-d', ctx.durationS, '-t', 'tern/bench/pairs/b%i'),
    ],
    metrics: [RATE],
    extract: (results) => ({ recvRate: sum(results, 'recvRate'), sendRate: sum(results, 'sendRate') }),
    check: benchCheck,
  },
  {
    id: 'latency',
    group: 'latency',
    title: 'latency, 1 pair at 5,000 msg/s QoS 0',
    qos: 0,
    brokers: ALL,
    storage: 'memory',
    loads: (ctx) => [bench(ctx, 'latency', '-c', 1, '-r', 5000, '-d', ctx.durationS)],
    metrics: [
      { key: 'p50Ms', label: 'p50', unit: 'ms', better: 'lower' },
      { key: 'p99Ms', label: 'p99', unit: 'ms', better: 'lower' },
    ],
    extract: (results) => ({
      p50Ms: field(results[0], 'latencyMs', 'p50Ms'),
      p99Ms: field(results[0], 'latencyMs', 'p99Ms'),
      maxMs: field(results[0], 'latencyMs', 'maxMs'),
      recvRate: field(results[0], 'recvRate'),
    }),
    check: benchCheck,
  },
  {
    id: 'idle',
    group: 'idle',
    title: 'idle connections',
    qos: null,
    brokers: ALL,
    storage: 'memory',
    // Hold long enough for a few RSS samples once everyone is connected.
    loads: (ctx) => [bench(ctx, 'conn', '-c', ctx.idleConns, '-d', Math.max(2, Math.min(ctx.durationS, 5)))],
    metrics: [
      { key: 'rssPerConnKiB', label: 'RSS/conn', unit: 'KiB', better: 'lower' },
      { key: 'connectRate', label: 'connects/s', unit: 'conn/s', better: 'higher' },
    ],
    extract: (results, seen, ctx) => {
      const connected = field(results[0], 'clients', 'connected') ?? ctx.idleConns;
      const grew = seen.rssPeakKiB !== null && seen.rssBeforeKiB !== null ? seen.rssPeakKiB - seen.rssBeforeKiB : null;
      return {
        rssPerConnKiB: grew !== null && connected > 0 ? Math.round((grew / connected) * 100) / 100 : null,
        connectRate: field(results[0], 'connect', 'ratePerS'),
        rssBeforeKiB: seen.rssBeforeKiB,
        rssPeakKiB: seen.rssPeakKiB,
        connected,
      };
    },
    check: benchCheck,
  },
  {
    id: 'retained',
    group: 'retained',
    title: 'retained storm, 20 subscribers to # over the retained set',
    qos: null,
    brokers: ALL,
    storage: 'memory',
    loads: (ctx) => [[...tsScript('bench/compare/retained-storm.ts'), '-p', String(ctx.port), '-V', String(ctx.version), '--retained', String(ctx.retained), '--subscribers', '20']],
    metrics: [{ key: 'deliveriesPerS', label: 'retained deliveries/s', unit: 'msg/s', better: 'higher' }],
    extract: (results) => ({
      deliveriesPerS: field(results[0], 'deliveriesPerS'),
      stormS: field(results[0], 'stormS'),
      storeRate: field(results[0], 'storeRate'),
    }),
    check: (results) => {
      const r = results[0];
      const problems: string[] = [];
      if (r?.complete !== true) problems.push(`storm incomplete: ${String(r?.deliveries)} of ${String(r?.expected)}`);
      if ((field(r, 'errors') ?? 0) > 0) problems.push(`errors: ${JSON.stringify(r?.errorSamples)}`);
      return problems;
    },
  },
  {
    id: 'persistent',
    group: 'persistent',
    title: 'persistent sessions, 16 pairs QoS 1 (tern sqlite, mosquitto persistence true)',
    qos: 1,
    brokers: ['tern', 'mosquitto'],
    storage: 'persistent',
    loads: (ctx) => [[...tsScript('bench/compare/session-load.ts'), '-p', String(ctx.port), '-V', String(ctx.version), '-c', '16', '-q', '1', '-d', String(ctx.durationS), '--queued', '500']],
    metrics: [
      RATE,
      { key: 'queuedRate', label: 'queued drain/s', unit: 'msg/s', better: 'higher' },
    ],
    extract: (results) => ({
      recvRate: field(results[0], 'recvRate'),
      sendRate: field(results[0], 'sendRate'),
      queuedRate: field(results[0], 'queued', 'ratePerS'),
      p99Ms: field(results[0], 'latencyMs', 'p99Ms'),
    }),
    check: (results) => {
      const r = results[0];
      const problems: string[] = [];
      const q = r?.queued as { complete?: boolean; received?: number; expected?: number } | undefined;
      if (q?.complete !== true) problems.push(`queued drain incomplete: ${String(q?.received)} of ${String(q?.expected)}`);
      if ((field(r, 'errors') ?? 0) > 0) problems.push(`errors: ${JSON.stringify(r?.errorSamples)}`);
      return problems;
    },
  },
];

/** Aliases for `--only`: a group name, a scenario id, or one of these. */
export const ALIASES: Record<string, readonly string[]> = {
  gencheck: ['pairs-q0', 'pairs-q0-2gen'],
  throughput: SCENARIOS.filter((s) => ['pairs', 'fanout', 'fanin'].includes(s.group)).map((s) => s.id),
};

/** Standalone benches run as child processes (compare/micro.ts); `cluster` only when named in --only (it needs redis-server). */
export const MICRO = ['codec', 'trie', 'store', 'cluster'] as const;
export type MicroName = (typeof MICRO)[number];
