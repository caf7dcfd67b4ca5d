/**
 * Retained-message subscribe storm, a load `tern bench` has no scenario for:
 *
 *   node --import tsx bench/compare/retained-storm.ts -p PORT [-V 4] [--retained 10000] [--subscribers 20] [--size 64]
 *
 * 1. one client stores `--retained` retained messages (QoS 1, acknowledged)
 *    on tern/bench/storm/<i>;
 * 2. `--subscribers` clients connect, then all subscribe to
 *    tern/bench/storm/# (QoS 0) at once; the storm lasts from the first
 *    SUBSCRIBE to the last retained delivery.
 * A storm that stops short (a broker dropping deliveries) ends 2 s after
 * the last one and reports complete: false.
 * Prints one JSON object: {retained, subscribers, storeS, stormS, deliveries,
 * expected, deliveriesPerS, complete, errors}. Built on Tern's client, like
 * `tern bench`, so every broker meets the same client.
 */
import { parseArgs } from 'node:util';
import { MqttClient } from '../../src/client/client.js';
import type { PublishPacket } from '../../src/codec/types.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', short: 'p' },
    version: { type: 'string', short: 'V', default: '4' },
    retained: { type: 'string', default: '10000' },
    subscribers: { type: 'string', default: '20' },
    size: { type: 'string', default: '64' },
    timeout: { type: 'string', default: '60' },
  },
});
const port = Number(values.port);
const version = values.version === '5' ? 5 : 4;
const retained = Number(values.retained);
const subscribers = Number(values.subscribers);
const payload = Buffer.alloc(Number(values.size), 0x61);
const timeoutMs = Number(values.timeout) * 1000;
const PREFIX = 'tern/bench/storm';
const tag = `tern-storm-${process.pid.toString(36)}`;
let errors = 0;
const errorSamples: string[] = [];
const onError = (err: Error): void => {
  errors++;
  if (errorSamples.length < 5) errorSamples.push(err.message);
};

const client = (id: string): MqttClient =>
  new MqttClient({ host: '127.0.0.1', port, protocolLevel: version, clientId: id, keepalive: 60, connectTimeoutMs: 10_000 });

// ---- 1. store the retained messages, at most WINDOW unacknowledged ----
const WINDOW = 256;
const publisher = client(`${tag}-p`);
publisher.on('error', onError);
await publisher.connect();
const storeStart = performance.now();
await new Promise<void>((resolve) => {
  let issued = 0;
  let done = 0;
  const onAck = (err: Error | null): void => {
    if (err !== null) onError(err);
    done++;
    if (done === retained) resolve();
    else pump();
  };
  const pump = (): void => {
    while (issued < retained && issued - done < WINDOW) {
      publisher.publishWithCallback(`${PREFIX}/${issued++}`, payload, 1, true, undefined, onAck);
    }
  };
  if (retained === 0) resolve();
  else pump();
});
const storeS = (performance.now() - storeStart) / 1000;
await publisher.end();

// ---- 2. the storm ----
const subs = await Promise.all(
  Array.from({ length: subscribers }, async (_, i) => {
    const c = client(`${tag}-s${i}`);
    c.on('error', onError);
    await c.connect();
    return c;
  }),
);
let deliveries = 0;
const expected = retained * subscribers;
let lastAt = 0;
let finish: () => void = () => {};
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});
const onMessage = (p: PublishPacket): void => {
  if (!p.retain) return;
  deliveries++;
  lastAt = performance.now();
  if (deliveries >= expected) finish();
};
for (const c of subs) c.on('message', onMessage);
const stormStart = performance.now();
const timer = setTimeout(finish, timeoutMs);
// A broker that drops part of the storm never completes: stop 2 s after the last delivery.
let seen = -1;
let seenAt = performance.now();
const stall = setInterval(() => {
  if (deliveries !== seen) {
    seen = deliveries;
    seenAt = performance.now();
  } else if (performance.now() - seenAt > 2000) {
    finish();
  }
}, 100);
await Promise.all(subs.map((c) => c.subscribe(`${PREFIX}/#`, { qos: 0 })));
if (expected === 0) finish();
await finished;
clearTimeout(timer);
clearInterval(stall);
const stormS = ((deliveries > 0 ? lastAt : performance.now()) - stormStart) / 1000;
await Promise.all(subs.map((c) => c.end().catch(() => {})));

const round = (v: number): number => Math.round(v * 1000) / 1000;
process.stdout.write(
  `${JSON.stringify({
    scenario: 'retained-storm',
    retained,
    subscribers,
    size: payload.length,
    storeS: round(storeS),
    storeRate: storeS > 0 ? Math.round(retained / storeS) : 0,
    stormS: round(stormS),
    deliveries,
    expected,
    deliveriesPerS: stormS > 0 ? Math.round(deliveries / stormS) : 0,
    complete: deliveries >= expected,
    errors,
    errorSamples,
  })}\n`,
);
process.exit(0);
