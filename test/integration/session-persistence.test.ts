/**
 * Clean Session semantics of MQTT 3.1.1 [MQTT-3.1.2-4..6], [MQTT-4.1]: state kept
 * for clean-session-0 clients while away, discarded for clean-session-1 clients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { clientId, connected, connectMqtt, MessageCollector, mqttClient } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

test('a clean-session-0 client keeps its subscriptions and gets QoS 1 and QoS 2 messages queued while it was away [MQTT-3.1.2-4, MQTT-3.1.2-5]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const id = clientId('persist');
  const sub = await RawClient.connected(port, t, { clientId: id, clean: false });
  sub.send(P.subscribe(1, [{ filter: 'persist/+', qos: 2 }]));
  assert.deepEqual((await sub.expectPacket('suback')).granted, [2]);
  sub.send(P.disconnect());
  await sub.expectClose();

  const pub = await connectMqtt(t, url);
  await pub.publishAsync('persist/q1', 'one', { qos: 1 });
  await pub.publishAsync('persist/q2', 'two', { qos: 2 });
  await pub.publishAsync('persist/q0', 'zero', { qos: 0 }); // QoS 0 may or may not be queued [MQTT-3.1.2-5]

  const back = await RawClient.connect(port, t);
  const connack = await back.handshake({ clientId: id, clean: false });
  assert.equal(connack.sessionPresent, true);
  const m1 = await back.expectPacket('publish');
  assert.deepEqual([m1.topic, m1.payload.toString(), m1.qos], ['persist/q1', 'one', 1]);
  back.send(P.puback(m1.id ?? 0));
  const m2 = await back.expectPacket('publish');
  assert.deepEqual([m2.topic, m2.payload.toString(), m2.qos], ['persist/q2', 'two', 2]);
  back.send(P.pubrec(m2.id ?? 0));
  assert.equal((await back.expectPacket('pubrel')).id, m2.id);
  back.send(P.pubcomp(m2.id ?? 0));

  // The subscription itself survived: a new publish is delivered without re-subscribing.
  await pub.publishAsync('persist/again', 'three', { qos: 1 });
  let next = await back.expectPacket('publish');
  if (next.topic === 'persist/q0') next = await back.expectPacket('publish');
  assert.deepEqual([next.topic, next.payload.toString()], ['persist/again', 'three']);
});

test('connecting with clean session 1 discards the stored session: no queued messages, no subscriptions [MQTT-3.1.2-6]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const id = clientId('discard');
  const sub = await RawClient.connected(port, t, { clientId: id, clean: false });
  sub.send(P.subscribe(1, [{ filter: 'discard/t', qos: 1 }]));
  await sub.expectPacket('suback');
  sub.send(P.disconnect());
  await sub.expectClose();

  const pub = await connectMqtt(t, url);
  await pub.publishAsync('discard/t', 'queued', { qos: 1 });

  const clean = await RawClient.connect(port, t);
  const connack = await clean.handshake({ clientId: id, clean: true });
  assert.equal(connack.sessionPresent, false);
  // Subscribe to a different topic and publish a marker there: the marker must be
  // the first and only thing delivered (no queued message, old subscription gone).
  clean.send(P.subscribe(2, [{ filter: 'discard/marker', qos: 1 }]));
  await clean.expectPacket('suback');
  await pub.publishAsync('discard/t', 'after', { qos: 1 });
  await pub.publishAsync('discard/marker', 'marker', { qos: 1 });
  const first = await clean.expectPacket('publish');
  assert.equal(first.payload.toString(), 'marker');
});

test('a clean-session-1 session ends with its connection: reconnecting with clean session 0 finds no session [MQTT-3.1.2-6, MQTT-3.2.2-3]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const id = clientId('ephemeral');
  const c = await RawClient.connected(port, t, { clientId: id, clean: true });
  c.send(P.subscribe(1, [{ filter: 'ephemeral/t', qos: 1 }]));
  await c.expectPacket('suback');
  c.send(P.disconnect());
  await c.expectClose();

  const pub = await connectMqtt(t, url);
  await pub.publishAsync('ephemeral/t', 'lost', { qos: 1 });

  const back = await RawClient.connect(port, t);
  const connack = await back.handshake({ clientId: id, clean: false });
  assert.equal(connack.sessionPresent, false);
  back.send(P.subscribe(2, [{ filter: 'ephemeral/marker', qos: 1 }]));
  await back.expectPacket('suback');
  await pub.publishAsync('ephemeral/t', 'not-subscribed', { qos: 1 });
  await pub.publishAsync('ephemeral/marker', 'marker', { qos: 1 });
  assert.equal((await back.expectPacket('publish')).payload.toString(), 'marker');
});

test('MQTT.js persistent session: messages published while offline arrive on reconnect with clean false', T, async (t) => {
  const { url } = await startBroker(t);
  const id = clientId('mqttjs-persist');
  const a = await connectMqtt(t, url, { clientId: id, clean: false });
  await a.subscribeAsync('mjs/persist', { qos: 1 });
  await a.endAsync();

  const pub = await connectMqtt(t, url);
  for (let i = 0; i < 5; i++) await pub.publishAsync('mjs/persist', `m${i}`, { qos: 1 });

  const b = mqttClient(t, url, { clientId: id, clean: false });
  const got = new MessageCollector(b);
  await connected(b);
  const received = (await got.waitFor(5)).map((m) => m.payload);
  assert.deepEqual(received, ['m0', 'm1', 'm2', 'm3', 'm4']);
});
