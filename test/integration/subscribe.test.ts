/**
 * SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK [MQTT-3.8] .. [MQTT-3.11].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { clientId, connectMqtt } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

test('SUBACK carries the packet id and one granted QoS per filter, in order [MQTT-3.8.4-1, MQTT-3.8.4-5, MQTT-3.9.3-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(4321, [{ filter: 's/two', qos: 2 }, { filter: 's/zero', qos: 0 }, { filter: 's/one', qos: 1 }]));
  const suback = await c.expectPacket('suback');
  assert.equal(suback.id, 4321);
  assert.deepEqual(suback.granted, [2, 0, 1]);
});

test('an invalid topic filter gets return code 0x80 while valid filters in the same SUBSCRIBE are granted [MQTT-3.9.3-2, MQTT-4.7.1-2, MQTT-4.7.1-3]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(1, [{ filter: 'a/#/b', qos: 1 }, { filter: 'ok/+', qos: 1 }, { filter: 'a+', qos: 0 }, { filter: 'x/#y', qos: 0 }]));
  if (isMosquitto) {
    // Deviation: mosquitto 2.0 treats an invalid filter as a malformed packet and
    // disconnects ("Invalid subscription string ..., disconnecting") instead of
    // answering 0x80. 3.1.1 permits the 0x80 answer that Tern gives.
    await c.expectClose();
    return;
  }
  const suback = await c.expectPacket('suback');
  assert.deepEqual(suback.granted, [0x80, 1, 0x80, 0x80]);
  // The connection stays usable and the valid subscription works.
  c.send(P.publish({ topic: 'ok/x', payload: 'hi', qos: 1, id: 9 }));
  const got: P.ParsedPacket[] = [await c.next(), await c.next()];
  const pub = got.find((p) => p.type === 'publish');
  assert.ok(pub !== undefined && pub.type === 'publish' && pub.topic === 'ok/x');
  assert.ok(got.some((p) => p.type === 'puback' && p.id === 9));
});

test('UNSUBSCRIBE is answered by UNSUBACK with the same packet id and stops deliveries [MQTT-3.10.4-1, MQTT-3.10.4-4, MQTT-3.10.4-5]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(1, [{ filter: 'u/gone', qos: 1 }, { filter: 'u/kept', qos: 1 }]));
  await c.expectPacket('suback');
  c.send(P.unsubscribe(777, ['u/gone', 'u/never-subscribed']));
  assert.equal((await c.expectPacket('unsuback')).id, 777);

  const pub = await connectMqtt(t, url);
  await pub.publishAsync('u/gone', 'nope', { qos: 1 });
  await pub.publishAsync('u/kept', 'marker', { qos: 1 });
  const first = await c.expectPacket('publish');
  assert.equal(first.topic, 'u/kept', 'the unsubscribed topic is no longer delivered');
});

test('subscribing again to the same filter replaces the subscription: one delivery, new QoS, retained message resent [MQTT-3.8.4-3]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('resub/t', 'retained', { qos: 1, retain: true });

  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(1, [{ filter: 'resub/t', qos: 0 }]));
  assert.deepEqual((await c.expectPacket('suback')).granted, [0]);
  const r1 = await c.expectPacket('publish');
  assert.equal(r1.retain, true);

  c.send(P.subscribe(2, [{ filter: 'resub/t', qos: 1 }]));
  assert.deepEqual((await c.expectPacket('suback')).granted, [1]);
  const r2 = await c.expectPacket('publish');
  assert.equal(r2.retain, true, 'retained message is re-sent on re-subscribe');
  assert.equal(r2.payload.toString(), 'retained');
  if (r2.qos > 0) c.send(P.puback(r2.id ?? 0));

  await pub.publishAsync('resub/t', 'live', { qos: 1 });
  await pub.publishAsync('resub/t', 'marker', { qos: 1 });
  const live = await c.expectPacket('publish');
  assert.equal(live.payload.toString(), 'live');
  assert.equal(live.qos, 1, 'the replacing subscription QoS applies');
  c.send(P.puback(live.id ?? 0));
  const marker = await c.expectPacket('publish');
  assert.equal(marker.payload.toString(), 'marker', 'the live message was delivered exactly once');
  c.send(P.puback(marker.id ?? 0));
});

test('SUBSCRIBE with fixed-header flags other than 0010 closes the connection [MQTT-3.8.1-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(1, [{ filter: 'a', qos: 0 }], { flags: 0 }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'suback'));
});

test('SUBSCRIBE without any topic filter closes the connection [MQTT-3.8.3-3]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.subscribe(1, []));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'suback'));
});

test('UNSUBSCRIBE without any topic filter closes the connection [MQTT-3.10.3-2]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.unsubscribe(1, []));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'unsuback'));
});
