/**
 * Retained messages [MQTT-3.3.1-5 .. MQTT-3.3.1-11].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { startBroker, TERN_ONLY } from '../helpers/broker.js';
import { clientId, connectMqtt } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

/** Subscribes a fresh raw client and returns it after the SUBACK. */
async function subscribe(t: TestContext, port: number, filters: P.SubscriptionRequest[]): Promise<RawClient> {
  const c = await RawClient.connected(port, t, { clientId: clientId('ret') });
  c.send(P.subscribe(1, filters));
  const suback = await c.expectPacket('suback');
  assert.deepEqual(suback.granted, filters.map((f) => f.qos ?? 0));
  return c;
}

test('a retained message is stored and sent to a later subscriber with the retain flag set [MQTT-3.3.1-5, MQTT-3.3.1-6, MQTT-3.3.1-8]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('ret/store', 'kept', { qos: 1, retain: true });
  const sub = await subscribe(t, port, [{ filter: 'ret/store', qos: 1 }]);
  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.topic, m.payload.toString(), m.retain, m.qos], ['ret/store', 'kept', true, 1]);
});

test('retained messages are delivered for a wildcard subscription, with the retain flag set [MQTT-3.3.1-6, MQTT-3.3.1-8]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('wret/a', 'A', { qos: 0, retain: true });
  await pub.publishAsync('wret/b/c', 'BC', { qos: 0, retain: true });
  await pub.publishAsync('other/x', 'X', { qos: 0, retain: true });
  const sub = await subscribe(t, port, [{ filter: 'wret/#', qos: 0 }]);
  const got = [await sub.expectPacket('publish'), await sub.expectPacket('publish')];
  assert.deepEqual(got.map((m) => [m.topic, m.payload.toString(), m.retain]).sort(), [
    ['wret/a', 'A', true],
    ['wret/b/c', 'BC', true],
  ]);
  await pub.publishAsync('wret/marker', 'marker', { qos: 0 });
  const next = await sub.expectPacket('publish');
  assert.deepEqual([next.topic, next.retain], ['wret/marker', false], 'no other retained message matched');
});

test('a new retained message replaces the stored one [MQTT-3.3.1-5]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('ret/replace', 'old', { qos: 1, retain: true });
  await pub.publishAsync('ret/replace', 'new', { qos: 1, retain: true });
  const sub = await subscribe(t, port, [{ filter: 'ret/replace', qos: 0 }]);
  const m = await sub.expectPacket('publish');
  assert.equal(m.payload.toString(), 'new');
  await pub.publishAsync('ret/replace', 'marker', { qos: 0 });
  assert.equal((await sub.expectPacket('publish')).payload.toString(), 'marker', 'only one retained message per topic');
});

test('a retained PUBLISH with an empty payload clears the retained message and is delivered normally [MQTT-3.3.1-10, MQTT-3.3.1-11]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('ret/clear', 'doomed', { qos: 1, retain: true });
  const live = await subscribe(t, port, [{ filter: 'ret/clear', qos: 0 }]);
  assert.equal((await live.expectPacket('publish')).payload.toString(), 'doomed');

  await pub.publishAsync('ret/clear', '', { qos: 1, retain: true });
  const cleared = await live.expectPacket('publish');
  assert.equal(cleared.payload.length, 0, 'the zero-byte retained message is forwarded to current subscribers');

  const later = await subscribe(t, port, [{ filter: 'ret/clear', qos: 0 }]);
  await pub.publishAsync('ret/clear', 'marker', { qos: 0 });
  const first = await later.expectPacket('publish');
  assert.equal(first.payload.toString(), 'marker', 'nothing retained is sent to a new subscriber');
  assert.equal(first.retain, false);
});

test('a retained message forwarded to an existing subscription has the retain flag cleared [MQTT-3.3.1-9]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await subscribe(t, port, [{ filter: 'ret/live', qos: 1 }]);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'ret/live', payload: 'now', qos: 1, id: 3, retain: true }));
  await pub.expectPacket('puback');
  const m = await sub.expectPacket('publish');
  assert.equal(m.payload.toString(), 'now');
  assert.equal(m.retain, false);
  sub.send(P.puback(m.id ?? 0));
});

test('a retained message is delivered at the lower of its stored QoS and the subscription QoS [MQTT-3.3.1-6, MQTT-3.8.4-6]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('ret/qos/two', 'q2', { qos: 2, retain: true });
  await pub.publishAsync('ret/qos/zero', 'q0', { qos: 0, retain: true });
  const s1 = await subscribe(t, port, [{ filter: 'ret/qos/two', qos: 1 }]);
  const m1 = await s1.expectPacket('publish');
  assert.deepEqual([m1.payload.toString(), m1.qos, m1.retain], ['q2', 1, true]);
  const s2 = await subscribe(t, port, [{ filter: 'ret/qos/zero', qos: 2 }]);
  const m2 = await s2.expectPacket('publish');
  assert.deepEqual([m2.payload.toString(), m2.qos, m2.retain], ['q0', 0, true]);
});

test('a QoS 0 retained message is stored too (replacing older ones) [MQTT-3.3.1-7]', T, async (t) => {
  const { port } = await startBroker(t);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'ret/q0', payload: 'first', qos: 1, id: 1, retain: true }));
  await pub.expectPacket('puback');
  pub.send(P.publish({ topic: 'ret/q0', payload: 'zero', qos: 0, retain: true }));
  pub.send(P.pingreq());
  await pub.expectPacket('pingresp');
  const sub = await subscribe(t, port, [{ filter: 'ret/q0', qos: 1 }]);
  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.payload.toString(), m.qos, m.retain], ['zero', 0, true]);
});

test('retained messages sent on subscribe wait for a slow subscriber instead of overflowing its queue', { timeout: 30_000, skip: TERN_ONLY }, async (t) => {
  const { port, broker } = await startBroker(t, { limits: { maxQueued: 50 } });
  for (let i = 0; i < 3000; i++) await broker!.publish({ topic: `storm/${i}`, payload: Buffer.alloc(300, 0x61), qos: 0, retain: true });
  const slow = await RawClient.connected(port, t, { clientId: 'storm-sub' });
  slow.pauseReading();
  slow.send(P.subscribe(1, [{ filter: 'storm/#', qos: 0 }]));
  await new Promise((resolve) => setTimeout(resolve, 300));
  slow.resumeReading();
  let publishes = 0;
  await slow.expectPacket('suback', 10_000);
  while (publishes < 3000) {
    const p = await slow.next(10_000, `retained message ${publishes + 1} of 3000`);
    if (p.type === 'publish') publishes++;
  }
  assert.equal(publishes, 3000);
});
