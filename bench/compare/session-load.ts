/**
 * Persistent sessions under load, a load `tern bench` cannot make (its
 * clients always connect with clean start):
 *
 *   node --import tsx bench/compare/session-load.ts -p PORT [-V 4] [-c 16] [-q 1] [-d 10] [--queued 500]
 *
 * 1. live: -c publisher/subscriber pairs, every client with clean session 0
 *    (-V 4, the default) or clean start 0 and a one-hour session expiry
 *    (-V 5), publish QoS -q for -d seconds through
 *    src/bench's Publisher (the same windows as `tern bench pairs`);
 * 2. offline: the subscribers disconnect, each publisher sends --queued
 *    messages into its subscriber's stored session, the subscribers
 *    reconnect, and the time to receive every queued message is measured.
 * Prints one JSON object: {sendRate, recvRate, latencyMs, queued: {...}, errors}.
 */
import { parseArgs } from 'node:util';
import { MqttClient } from '../../src/client/client.js';
import type { PublishPacket, QoS } from '../../src/codec/types.js';
import { Publisher } from '../../src/bench/publisher.js';
import { summarize } from '../../src/bench/report.js';
import { nowMs, readIndex, readStamp } from '../../src/bench/stamp.js';
import { Stats } from '../../src/bench/stats.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', short: 'p' },
    version: { type: 'string', short: 'V', default: '4' },
    clients: { type: 'string', short: 'c', default: '16' },
    qos: { type: 'string', short: 'q', default: '1' },
    duration: { type: 'string', short: 'd', default: '10' },
    queued: { type: 'string', default: '500' },
  },
});
const port = Number(values.port);
const version = values.version === '5' ? 5 : 4;
const pairs = Number(values.clients);
const qos = Number(values.qos) as QoS;
const durationS = Number(values.duration);
const queuedPerSub = Number(values.queued);
const SIZE = 64;
const WINDOW = 64;
const tag = `tern-sess-${process.pid.toString(36)}`;
const stats = new Stats();
const topic = (i: number): string => `tern/bench/session/${tag}/${i}`;

const client = (id: string): MqttClient =>
  new MqttClient({
    host: '127.0.0.1',
    port,
    protocolLevel: version,
    clientId: id,
    clean: false,
    properties: { sessionExpiryInterval: 3600 },
    keepalive: 60,
    connectTimeoutMs: 10_000,
  });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function connectSubscriber(i: number, onMessage: (p: PublishPacket) => void): Promise<MqttClient> {
  const c = client(`${tag}-s${i}`);
  c.on('message', onMessage);
  c.on('error', (err) => stats.error(err));
  await c.connect();
  return c;
}

// ---- 1. live pairs ----
const publishers: Publisher[] = [];
const onLive = (p: PublishPacket): void => {
  stats.received++;
  const at = readStamp(p.payload);
  if (at >= 0) {
    stats.recordLatency((nowMs() - at) * 1000);
    publishers[readIndex(p.payload)]?.delivered();
  }
};
let subs = await Promise.all(
  Array.from({ length: pairs }, async (_, i) => {
    const c = await connectSubscriber(i, onLive);
    const [code] = await c.subscribe(topic(i), { qos });
    if (code === undefined || code >= 0x80) throw new Error(`subscribe refused: ${code}`);
    return c;
  }),
);
const pubClients = await Promise.all(
  Array.from({ length: pairs }, async (_, i) => {
    const c = client(`${tag}-p${i}`);
    c.on('error', (err) => stats.error(err));
    await c.connect();
    return c;
  }),
);
pubClients.forEach((c, i) => publishers.push(new Publisher(c, topic(i), i, { qos, size: SIZE, window: WINDOW, deliveries: 1 }, stats)));
const watchdog = setInterval(() => {
  const now = nowMs();
  for (const p of publishers) p.checkStall(now);
}, 250);
const runStart = nowMs();
for (const p of publishers) p.startUnpaced();
await sleep(durationS * 1000);
for (const p of publishers) p.stop();
clearInterval(watchdog);
const elapsedS = (nowMs() - runStart) / 1000;
const sentAtStop = stats.sent;
const receivedAtStop = stats.received;
const drainUntil = nowMs() + 3000;
while (nowMs() < drainUntil && (publishers.some((p) => p.outstanding > 0) || stats.received < stats.sent)) await sleep(20);

// ---- 2. offline queue: subscribers leave, messages wait in their sessions ----
await Promise.all(subs.map((c) => c.end()));
// Unstamped, so a late live message (stamped) is told apart from a queued one.
const queuedPayload = Buffer.alloc(SIZE, 0x71);
await Promise.all(
  pubClients.map(
    (c, i) =>
      new Promise<void>((resolve) => {
        let issued = 0;
        let done = 0;
        const onAck = (err: Error | null): void => {
          if (err !== null) stats.error(err);
          if (++done === queuedPerSub) resolve();
          else pump();
        };
        const pump = (): void => {
          while (issued < queuedPerSub && issued - done < WINDOW) {
            issued++;
            c.publishWithCallback(topic(i), queuedPayload, qos === 0 ? 1 : qos, false, undefined, onAck);
          }
        };
        if (queuedPerSub === 0) resolve();
        else pump();
      }),
  ),
);
let queuedReceived = 0;
const queuedExpected = queuedPerSub * pairs;
let lastAt = 0;
let finish: () => void = () => {};
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});
const onQueued = (p: PublishPacket): void => {
  if (readStamp(p.payload) >= 0) return;
  queuedReceived++;
  lastAt = performance.now();
  if (queuedReceived >= queuedExpected) finish();
};
const resumeStart = performance.now();
const timer = setTimeout(finish, 30_000);
subs = await Promise.all(Array.from({ length: pairs }, (_, i) => connectSubscriber(i, onQueued)));
if (queuedExpected === 0) finish();
await finished;
clearTimeout(timer);
const resumeS = ((queuedReceived > 0 ? lastAt : performance.now()) - resumeStart) / 1000;

// ---- clean up: end the sessions (expiry 0 on the way out is v5-only; a clean connect removes them) ----
await Promise.all([...subs, ...pubClients].map((c) => c.end().catch(() => {})));
await Promise.all(
  Array.from({ length: pairs * 2 }, async (_, k) => {
    const id = k < pairs ? `${tag}-s${k}` : `${tag}-p${k - pairs}`;
    const c = new MqttClient({ host: '127.0.0.1', port, protocolLevel: version, clientId: id, clean: true, connectTimeoutMs: 10_000 });
    await c.connect().catch(() => {});
    await c.end().catch(() => {});
  }),
);

const round = (v: number): number => Math.round(v * 1000) / 1000;
process.stdout.write(
  `${JSON.stringify({
    scenario: 'persistent-sessions',
    pairs,
    qos,
    size: SIZE,
    durationS,
    elapsedS: round(elapsedS),
    sent: stats.sent,
    received: stats.received,
    sendRate: Math.round(sentAtStop / elapsedS),
    recvRate: Math.round(receivedAtStop / elapsedS),
    latencyMs: summarize(stats.latency),
    queued: {
      perSubscriber: queuedPerSub,
      expected: queuedExpected,
      received: queuedReceived,
      resumeS: round(resumeS),
      ratePerS: resumeS > 0 ? Math.round(queuedReceived / resumeS) : 0,
      complete: queuedReceived >= queuedExpected,
    },
    errors: stats.errors,
    errorSamples: stats.errorSamples,
  })}\n`,
);
process.exit(0);
