/**
 * Runs one bench scenario: connect (subscribers first, then publishers),
 * publish for the duration, stop, let in-flight messages drain, close.
 * Every scenario but `conn` is a plan of publisher topics and subscriber
 * filters, so they share this one loop.
 */
import type { Writable } from 'node:stream';
import type { MqttClient } from '../client/client.js';
import type { PublishPacket } from '../codec/types.js';
import { closeAll, connectAll } from './clients.js';
import { topicFor, type BenchOptions } from './options.js';
import { Publisher } from './publisher.js';
import { progressLine, summarize, type BenchResult } from './report.js';
import { nowMs, readIndex, readStamp } from './stamp.js';
import { Stats } from './stats.js';

export interface BenchIo {
  stdout: Writable;
  stderr: Writable;
}

interface Plan {
  /** Topic per publisher. */
  publishers: string[];
  /** Filter per subscriber. */
  subscribers: string[];
  /** Plain connections (conn). */
  plain: number;
}

/** MQTT filter match for the filters plans produce ('+' and '#'). */
export function matches(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length || (f[i] !== '+' && f[i] !== t[i])) return false;
  }
  return f.length === t.length;
}

function range(n: number, f: (i: number) => string): string[] {
  return Array.from({ length: n }, (_, i) => f(i + 1));
}

export function planFor(o: BenchOptions): Plan {
  const n = o.clients;
  const t = o.topic;
  switch (o.scenario) {
    case 'conn':
      return { publishers: [], subscribers: [], plain: n };
    case 'pub':
      return { publishers: range(n, (i) => topicFor(t, i)), subscribers: [], plain: 0 };
    case 'sub':
      return { publishers: [], subscribers: range(n, (i) => topicFor(t, i)), plain: 0 };
    case 'pairs':
    case 'latency': {
      const topics = range(n, (i) => topicFor(t, i));
      return { publishers: topics, subscribers: topics, plain: 0 };
    }
    case 'fanout':
      return { publishers: [topicFor(t, 1)], subscribers: range(n, () => topicFor(t, 1)), plain: 0 };
    case 'fanin':
      return { publishers: range(n, (i) => topicFor(t, i)), subscribers: [t.replaceAll('%i', '+')], plain: 0 };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function runScenario(o: BenchOptions, io: BenchIo, signal?: AbortSignal): Promise<BenchResult> {
  const stats = new Stats();
  const plan = planFor(o);
  const requested = plan.plain + plan.subscribers.length + plan.publishers.length;
  const tag = `tern-bench-${process.pid.toString(36)}${Date.now().toString(36).slice(-4)}`;
  let stopping = false;
  const isStopping = (): boolean => stopping || signal?.aborted === true;

  // ---- progress line ----
  let phase = 'connect';
  const phaseStart = { at: nowMs() };
  let last = { at: nowMs(), sent: 0, received: 0 };
  const reporter = o.quiet
    ? undefined
    : setInterval(() => {
        const at = nowMs();
        const secs = (at - last.at) / 1000;
        io.stderr.write(
          progressLine({
            scenario: o.scenario,
            phase,
            elapsedS: (at - phaseStart.at) / 1000,
            connected: stats.connected,
            requested,
            sentPerS: (stats.sent - last.sent) / secs,
            recvPerS: (stats.received - last.received) / secs,
            errors: stats.errors,
            interval: stats.interval,
          }),
        );
        stats.interval.reset();
        last = { at, sent: stats.sent, received: stats.received };
      }, 1000);

  // ---- connect ----
  const publishers: Publisher[] = [];
  const onMessage = (p: PublishPacket): void => {
    stats.received++;
    const sentAt = readStamp(p.payload);
    if (sentAt >= 0) {
      stats.recordLatency((nowMs() - sentAt) * 1000);
      publishers[readIndex(p.payload)]?.delivered();
    }
  };
  const all: MqttClient[] = [];
  const plainRun = await connectAll(o, range(plan.plain, (i) => `${tag}-c${i}`), stats, isStopping);
  const subRun = await connectAll(o, range(plan.subscribers.length, (i) => `${tag}-s${i}`), stats, isStopping, async (client, i) => {
    client.on('message', onMessage);
    const [code] = await client.subscribe(plan.subscribers[i]!, { qos: o.qos });
    if (code === undefined || code >= 0x80) throw new Error(`subscription to ${plan.subscribers[i]!} refused: 0x${(code ?? 0).toString(16)}`);
  });
  const pubRun = await connectAll(o, range(plan.publishers.length, (i) => `${tag}-p${i}`), stats, isStopping);
  all.push(...plainRun.clients, ...subRun.clients, ...pubRun.clients);
  const connectMs = plainRun.elapsedMs + subRun.elapsedMs + pubRun.elapsedMs;

  // ---- run ----
  phase = o.scenario === 'conn' ? 'hold' : 'run';
  phaseStart.at = nowMs();
  last = { at: phaseStart.at, sent: stats.sent, received: stats.received };
  // Deliveries per message of each publisher to the subscribers that connected.
  const filters = plan.subscribers.filter((_, i) => subRun.slots[i] !== undefined);
  const deliveries: number[] = [];
  pubRun.slots.forEach((client, i) => {
    if (client === undefined) return;
    const topic = plan.publishers[i]!;
    const n = filters.reduce((sum, f) => sum + (matches(f, topic) ? 1 : 0), 0);
    deliveries.push(n);
    publishers.push(new Publisher(client, topic, publishers.length, { qos: o.qos, size: o.size, window: o.inflight, deliveries: n }, stats));
  });
  const watchdog = setInterval(() => {
    const now = nowMs();
    for (const p of publishers) p.checkStall(now);
  }, 250);
  const runStart = nowMs();
  let ticker: NodeJS.Timeout | undefined;
  if (all.length > 0) {
    if (o.rate === 0) {
      for (const p of publishers) p.startUnpaced();
    } else if (publishers.length > 0) {
      const tick = (): void => {
        const target = Math.floor(((nowMs() - runStart) * o.rate) / 1000) + 1;
        for (const p of publishers) p.sendUpTo(target);
      };
      tick();
      ticker = setInterval(tick, Math.max(1, Math.min(10, 1000 / o.rate)));
    }
    await sleep(o.durationS * 1000, signal);
  }
  clearInterval(ticker);
  clearInterval(watchdog);
  for (const p of publishers) p.stop();
  const elapsedS = (nowMs() - runStart) / 1000;
  const sentAtStop = stats.sent;
  const receivedAtStop = stats.received;

  // ---- drain: acks and deliveries still on the way ----
  phase = 'drain';
  const subscribers = subRun.clients.length;
  const hasBoth = publishers.length > 0 && subscribers > 0;
  const expected = (): number => publishers.reduce((n, p, i) => n + p.sent * deliveries[i]!, 0);
  const deadline = nowMs() + 3000;
  let progressAt = nowMs();
  let seen = stats.sent + stats.received;
  while (nowMs() < deadline && all.length > 0 && !signal?.aborted) {
    const outstanding = publishers.reduce((n, p) => n + (p.client.connected ? p.outstanding : 0), 0);
    if (outstanding === 0 && (!hasBoth || stats.received >= expected())) break;
    const now = stats.sent + stats.received;
    if (now !== seen) {
      seen = now;
      progressAt = nowMs();
    } else if (nowMs() - progressAt > 500) {
      break;
    }
    await sleep(20, undefined);
  }

  // ---- close ----
  stopping = true;
  await closeAll(all);
  clearInterval(reporter);

  const connectS = connectMs / 1000;
  const connected = plainRun.clients.length + subRun.clients.length + pubRun.clients.length;
  return {
    scenario: o.scenario,
    host: o.host,
    port: o.port,
    version: o.version,
    qos: o.qos,
    size: o.size,
    rate: o.rate,
    durationS: o.durationS,
    clients: { requested, connected, failed: stats.connectFailures },
    connect: {
      elapsedS: Math.round(connectS * 1000) / 1000,
      ratePerS: connectS > 0 ? Math.round(connected / connectS) : 0,
      timeMs: summarize(stats.connectTime),
    },
    publishers: publishers.length,
    subscribers,
    elapsedS: Math.round(elapsedS * 1000) / 1000,
    sent: stats.sent,
    received: stats.received,
    expected: hasBoth ? expected() : null,
    sendRate: elapsedS > 0 ? Math.round(sentAtStop / elapsedS) : 0,
    recvRate: elapsedS > 0 ? Math.round(receivedAtStop / elapsedS) : 0,
    latencyMs: summarize(stats.latency),
    errors: stats.errors,
    errorSamples: stats.errorSamples,
  };
}
