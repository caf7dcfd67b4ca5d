/**
 * Rate limits over real TCP (config `limits.max_publish_rate`,
 * `max_publish_bytes_rate`, `rate_limit_disconnect_after_ms`,
 * `max_connection_rate_per_address`): a flooding publisher is slowed to its
 * limit by not being read, then disconnected (v5 0x96, 3.1.1 closed) if it
 * stays over; a connection flood from one address is refused past its rate.
 * Healthy clients keep their latency meanwhile.
 *
 * The latency checks run the broker as a child process, so the abusive
 * clients' work in this process is not what the probe measures.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { TernConfigInput } from '../../src/config/schema.js';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { clientId, connectMqtt, medianRoundTrip, MessageCollector, probeClient } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const TERN_ONLY = isMosquitto ? 'Tern rate limits; mosquitto has no equivalent settings' : false;
const T = { timeout: 60_000, skip: TERN_ONLY };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `n` QoS 0 PUBLISH packets to `topic/<i>` in one buffer, each `payloadBytes` of payload. */
function publishes(n: number, topic: string, payloadBytes: number, protocolVersion: P.ProtocolVersion = 4): Buffer {
  const payload = Buffer.alloc(payloadBytes, 0x61);
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(P.publish({ topic: `${topic}/${i % 10}`, payload, protocolVersion }));
  return Buffer.concat(parts);
}

/** Messages per second arriving at `collector` between `fromMs` and `toMs` after now. */
async function rateBetween(collector: MessageCollector, fromMs: number, toMs: number): Promise<{ rate: number; before: number }> {
  const start = performance.now();
  await sleep(fromMs);
  const c1 = collector.count;
  const t1 = performance.now();
  await sleep(toMs - (t1 - start));
  const c2 = collector.count;
  return { rate: ((c2 - c1) * 1000) / (performance.now() - t1), before: c1 };
}

test('a client over limits.max_publish_rate is slowed to about the limit; a healthy client keeps its latency', T, async (t) => {
  const limit = 100;
  const broker = await BrokerProcess.start(t, {
    backend: 'memory',
    toml: `[limits]\nmax_publish_rate = ${limit}\nrate_limit_disconnect_after_ms = 0\n`,
  });
  const healthy = await probeClient(t, broker.url);
  await medianRoundTrip(healthy, 10); // warm-up
  const baseline = await medianRoundTrip(healthy, 20);
  await sleep(1000); // the healthy client's bucket refills: probes stay within its burst

  const sub = await connectMqtt(t, broker.url);
  const received = new MessageCollector(sub, { keep: false });
  await sub.subscribeAsync('flood/#', { qos: 0 });

  const flooder = await RawClient.connected(broker.port, t, { clientId: clientId('flooder') });
  // 3000 publishes of ~100 bytes at once: unlimited, they would all arrive well within a second.
  flooder.write(publishes(3000, 'flood', 90));
  const measured = rateBetween(received, 1500, 4500);
  await sleep(2000);
  const during = await medianRoundTrip(healthy, 20);
  const { rate, before } = await measured;

  t.diagnostic(`flooder: ${before} messages in the first 1.5 s, then ${rate.toFixed(1)}/s (limit ${limit}/s)`);
  t.diagnostic(`healthy client median round trip: ${baseline.toFixed(2)} ms before, ${during.toFixed(2)} ms during the flood`);
  // One second of burst, the first unthrottled 16 KiB read (~160 packets), then the rate.
  assert.ok(before <= limit + 200 + limit * 1.5 * 1.2, `${before} messages in the first 1.5 s`);
  assert.ok(rate >= limit * 0.6 && rate <= limit * 1.4, `achieved ${rate.toFixed(1)}/s for a limit of ${limit}/s`);
  assert.ok(!flooder.closed, 'rate_limit_disconnect_after_ms = 0: slowed, never disconnected');
  assert.ok(during <= baseline * 2 + 5, `latency ${during.toFixed(2)} ms during the flood vs ${baseline.toFixed(2)} ms before`);
});

test('a client over limits.max_publish_bytes_rate is slowed to about that many bytes per second', T, async (t) => {
  const bytesLimit = 20_000;
  const { port, url } = await startBroker(t, { limits: { maxPublishBytesRate: bytesLimit, rateLimitDisconnectAfterMs: 0 } });
  const sub = await connectMqtt(t, url);
  const received = new MessageCollector(sub, { keep: false });
  await sub.subscribeAsync('bytes/#', { qos: 0 });

  const flooder = await RawClient.connected(port, t, { clientId: clientId('bytes') });
  const one = P.publish({ topic: 'bytes/0', payload: Buffer.alloc(990) }).length; // whole packet: what the limit counts
  flooder.write(publishes(500, 'bytes', 990));
  const { rate, before } = await rateBetween(received, 1500, 4000);
  const bytesPerSecond = rate * one;
  t.diagnostic(`flooder: ${before} packets of ${one} bytes in the first 1.5 s, then ${bytesPerSecond.toFixed(0)} B/s (limit ${bytesLimit})`);
  assert.ok(bytesPerSecond >= bytesLimit * 0.6 && bytesPerSecond <= bytesLimit * 1.4, `achieved ${bytesPerSecond.toFixed(0)} B/s`);
  assert.ok(!flooder.closed);
});

/** Flood until the server closes; the packets received before the close, and when it closed (ms after the start). */
async function floodUntilClosed(flooder: RawClient, data: Buffer): Promise<{ packets: P.ParsedPacket[]; afterMs: number }> {
  const start = performance.now();
  flooder.write(data);
  const packets = await flooder.expectClose(8000);
  return { packets, afterMs: performance.now() - start };
}

test('a v5 client kept over its publish rate gets DISCONNECT 0x96 after rate_limit_disconnect_after_ms; 3.1.1 is closed', T, async (t) => {
  const after = 1000;
  const { port, url } = await startBroker(t, { limits: { maxPublishRate: 50, rateLimitDisconnectAfterMs: after } });

  // Under the limit for longer than the tolerance: never paused, never disconnected.
  const polite = await connectMqtt(t, url, { protocolVersion: 5 });
  for (let i = 0; i < 40; i++) {
    await polite.publishAsync('polite/t', String(i), { qos: 1 });
    await sleep(40); // 25/s for 1.6 s
  }
  assert.ok(polite.connected, 'a client at half its rate stays connected');

  const v5 = await RawClient.connected(port, t, { clientId: clientId('v5'), protocolVersion: 5 });
  const r5 = await floodUntilClosed(v5, publishes(5000, 'flood5', 50, 5));
  t.diagnostic(`v5 flooder closed after ${r5.afterMs.toFixed(0)} ms with ${JSON.stringify(r5.packets)}`);
  assert.deepEqual(r5.packets, [{ type: 'disconnect', reasonCode: 0x96 }]);
  assert.ok(r5.afterMs >= after * 0.9, `closed after ${r5.afterMs.toFixed(0)} ms: only once over the limit for ${after} ms`);

  const v4 = await RawClient.connected(port, t, { clientId: clientId('v4') });
  const r4 = await floodUntilClosed(v4, publishes(5000, 'flood4', 50));
  t.diagnostic(`3.1.1 flooder closed after ${r4.afterMs.toFixed(0)} ms`);
  assert.deepEqual(r4.packets, [], '3.1.1 has no server DISCONNECT: just closed');
  assert.ok(r4.afterMs >= after * 0.9);

  // The broker goes on serving others.
  assert.ok(polite.connected);
  await polite.publishAsync('polite/t', 'still here', { qos: 1 });
});

test('a v5 client kept over limits.max_publish_bytes_rate gets DISCONNECT 0x96', T, async (t) => {
  const { port } = await startBroker(t, { limits: { maxPublishBytesRate: 10_000, rateLimitDisconnectAfterMs: 800 } });
  const v5 = await RawClient.connected(port, t, { clientId: clientId('bytes5'), protocolVersion: 5 });
  const r = await floodUntilClosed(v5, publishes(200, 'big', 2000, 5));
  t.diagnostic(`closed after ${r.afterMs.toFixed(0)} ms`);
  assert.deepEqual(r.packets, [{ type: 'disconnect', reasonCode: 0x96 }]);
  assert.ok(r.afterMs >= 700);
});

test('publish limits are read at use time: a reload that sets them applies to an open connection', T, async (t) => {
  const base: TernConfigInput = { listeners: [{ type: 'tcp', port: 0, host: '127.0.0.1' }], storage: { backend: 'memory' }, log: { level: 'silent' } };
  const { port, broker } = await startBroker(t, base);
  const reloadable = broker as unknown as { reload(next: TernConfigInput): Promise<{ applied: string[] }> };
  const v5 = await RawClient.connected(port, t, { clientId: clientId('reload'), protocolVersion: 5 });
  v5.send(P.publish({ topic: 'before/0', payload: 'x', qos: 1, id: 1, protocolVersion: 5 }));
  await v5.expectPacket('puback');
  const { applied } = await reloadable.reload({ ...base, limits: { maxPublishRate: 20, rateLimitDisconnectAfterMs: 500 } });
  assert.ok(applied.includes('limits.max_publish_rate'), `applied: ${applied.join(', ')}`);
  const r = await floodUntilClosed(v5, publishes(2000, 'after', 20, 5));
  assert.deepEqual(r.packets, [{ type: 'disconnect', reasonCode: 0x96 }]);
});

/** One connection attempt: did it get a successful CONNACK? */
async function attempt(port: number, t: TestContext): Promise<boolean> {
  let c: RawClient;
  try {
    c = await RawClient.connect(port, t);
  } catch {
    return false;
  }
  c.send(P.connect({ clientId: clientId('storm') }));
  try {
    const accepted = (await c.expectPacket('connack', 3000)).returnCode === 0;
    c.close();
    return accepted;
  } catch {
    return false;
  }
}

test('a connection flood from one address is refused past limits.max_connection_rate_per_address; a connected client keeps its latency', T, async (t) => {
  const perSecond = 20;
  const broker = await BrokerProcess.start(t, {
    backend: 'memory',
    toml: `[limits]\nmax_connection_rate_per_address = ${perSecond}\n`,
  });
  const healthy = await probeClient(t, broker.url);
  await medianRoundTrip(healthy, 10); // warm-up
  const baseline = await medianRoundTrip(healthy, 30);
  await sleep(1100); // a fresh window for the storm

  // 400 connects from 127.0.0.1 in ~1 s, in batches of 40 every 100 ms.
  const started = performance.now();
  const attempts: Array<Promise<boolean>> = [];
  const storm = (async () => {
    for (let batch = 0; batch < 10; batch++) {
      for (let i = 0; i < 40; i++) attempts.push(attempt(broker.port, t));
      await sleep(100);
    }
  })();
  const during = await medianRoundTrip(healthy, 30);
  await storm;
  const results = await Promise.all(attempts);
  const seconds = (performance.now() - started) / 1000;
  const accepted = results.filter(Boolean).length;

  t.diagnostic(`${results.length} connects in ${seconds.toFixed(2)} s: ${accepted} accepted (limit ${perSecond}/s)`);
  t.diagnostic(`healthy client median round trip: ${baseline.toFixed(2)} ms before, ${during.toFixed(2)} ms during the storm`);
  // Each one-second window admits `perSecond`; the storm spans at most ceil(seconds) + 1 windows.
  assert.ok(accepted >= perSecond, `${accepted} accepted: at least the first window's worth`);
  assert.ok(accepted <= perSecond * (Math.ceil(seconds) + 1), `${accepted} accepted in ${seconds.toFixed(2)} s`);
  assert.ok(during <= baseline * 2 + 5, `latency ${during.toFixed(2)} ms during the storm vs ${baseline.toFixed(2)} ms before`);
  // Refusals are logged once per window, not once per connection.
  const refusals = broker.output().split('\n').filter((line) => line.includes('too many new connections per second')).length;
  t.diagnostic(`refusal log lines: ${refusals}`);
  assert.ok(refusals >= 1 && refusals <= Math.ceil(seconds) + 1, `${refusals} refusal log lines`);
  await medianRoundTrip(healthy, 5);
});
