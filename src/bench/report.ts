/** The bench result object (the --json output), the progress line and the text summary. */
import type { Histogram } from './histogram.js';
import type { BenchOptions, Scenario } from './options.js';

export interface LatencySummary {
  count: number;
  minMs: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface BenchResult {
  scenario: Scenario;
  host: string;
  port: number;
  version: 4 | 5;
  qos: number;
  size: number;
  /** Messages/s per publisher requested; 0 = unpaced. */
  rate: number;
  durationS: number;
  clients: { requested: number; connected: number; failed: number };
  connect: { elapsedS: number; ratePerS: number; timeMs: LatencySummary | null };
  publishers: number;
  subscribers: number;
  /** Seconds of publishing (or holding) actually measured. */
  elapsedS: number;
  /** QoS 0: written; QoS 1/2: acknowledged. Totals include the drain after the run. */
  sent: number;
  received: number;
  /** Deliveries the subscribers should see for `sent` (fan-out counted); null without both roles. */
  expected: number | null;
  /** Rates over the measured window. */
  sendRate: number;
  recvRate: number;
  latencyMs: LatencySummary | null;
  errors: number;
  errorSamples: string[];
}

const round = (v: number, digits = 3): number => Math.round(v * 10 ** digits) / 10 ** digits;

/** Histogram in µs -> summary in ms; null when empty. */
export function summarize(h: Histogram): LatencySummary | null {
  if (h.count === 0) return null;
  return {
    count: h.count,
    minMs: round(h.min / 1000),
    meanMs: round(h.mean / 1000),
    p50Ms: round(h.percentile(50) / 1000),
    p90Ms: round(h.percentile(90) / 1000),
    p99Ms: round(h.percentile(99) / 1000),
    maxMs: round(h.max / 1000),
  };
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;
const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export interface ProgressSample {
  scenario: Scenario;
  phase: string;
  elapsedS: number;
  connected: number;
  requested: number;
  sentPerS: number;
  recvPerS: number;
  errors: number;
  interval: Histogram;
}

export function progressLine(s: ProgressSample): string {
  let line = `[${s.scenario} ${s.phase} ${s.elapsedS.toFixed(0)}s] conns ${fmt(s.connected)}/${fmt(s.requested)}`;
  if (s.phase !== 'connect' && s.scenario !== 'conn') {
    line += `  sent ${fmt(s.sentPerS)}/s  recv ${fmt(s.recvPerS)}/s`;
  }
  const h = s.interval;
  if (h.count > 0) {
    line += `  lat p50 ${ms(h.percentile(50) / 1000)} p90 ${ms(h.percentile(90) / 1000)} p99 ${ms(h.percentile(99) / 1000)} max ${ms(h.max / 1000)} ms`;
  }
  return `${line}  errors ${s.errors}\n`;
}

export function summaryText(r: BenchResult, o: BenchOptions): string {
  const lines: string[] = [];
  const rate = r.rate === 0 ? 'unpaced' : `${fmt(r.rate)} msg/s per publisher`;
  lines.push(
    `tern bench ${r.scenario}: ${r.host}:${r.port} MQTT ${r.version === 5 ? '5.0' : '3.1.1'}${o.tls ? ' TLS' : ''}, ` +
      (r.scenario === 'conn' ? `${fmt(r.clients.requested)} clients` : `QoS ${r.qos}, ${fmt(r.size)} B, ${rate}, ${r.durationS} s`),
  );
  lines.push(`  clients     ${fmt(r.clients.connected)}/${fmt(r.clients.requested)} connected, ${fmt(r.clients.failed)} failed`);
  const ct = r.connect.timeMs;
  lines.push(
    `  connect     ${fmt(r.connect.ratePerS)} conn/s over ${r.connect.elapsedS.toFixed(2)} s` +
      (ct ? `  (time p50 ${ms(ct.p50Ms)} p99 ${ms(ct.p99Ms)} max ${ms(ct.maxMs)} ms)` : ''),
  );
  if (r.scenario !== 'conn') {
    if (r.publishers > 0) lines.push(`  sent        ${fmt(r.sent)}  (${fmt(r.sendRate)} msg/s, ${plural(r.publishers, 'publisher')})`);
    if (r.subscribers > 0) {
      const exp = r.expected !== null ? ` of ${fmt(r.expected)} expected` : '';
      lines.push(`  received    ${fmt(r.received)}${exp}  (${fmt(r.recvRate)} msg/s, ${plural(r.subscribers, 'subscriber')})`);
    }
    const l = r.latencyMs;
    if (l) {
      lines.push(
        `  latency ms  p50 ${ms(l.p50Ms)}  p90 ${ms(l.p90Ms)}  p99 ${ms(l.p99Ms)}  max ${ms(l.maxMs)}  mean ${ms(l.meanMs)}  (n=${fmt(l.count)})`,
      );
    }
  }
  lines.push(`  errors      ${r.errors}`);
  for (const e of r.errorSamples) lines.push(`    ${e}`);
  return lines.join('\n') + '\n';
}
