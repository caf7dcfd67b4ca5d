/**
 * PUBLISH at QoS 0/1/2 in both directions with their acknowledgement flows
 * [MQTT-4.3], redelivery [MQTT-4.4], QoS downgrade [MQTT-3.8.4-6] and ordering [MQTT-4.6].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { clientId, connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

async function subscriber(t: Parameters<typeof startBroker>[0], port: number, filter: string, qos: number, connect: P.ConnectOptions = {}): Promise<RawClient> {
  const c = await RawClient.connected(port, t, { clientId: clientId('sub'), ...connect });
  c.send(P.subscribe(1, [{ filter, qos }]));
  assert.deepEqual((await c.expectPacket('suback')).granted, [qos]);
  return c;
}

test('QoS 0 publish is routed without acknowledgement and delivered at QoS 0 without packet id [MQTT-4.3.1-1, MQTT-2.3.1-5]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await subscriber(t, port, 'q0/t', 2);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'q0/t', payload: 'zero', qos: 0 }));
  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.topic, m.payload.toString(), m.qos, m.id, m.dup, m.retain], ['q0/t', 'zero', 0, undefined, false, false]);
  pub.send(P.pingreq());
  await pub.expectPacket('pingresp'); // nothing (no PUBACK) was sent before it
});

test('QoS 1 publish: broker answers PUBACK with the same id, delivers at QoS 1 with a non-zero id and accepts the PUBACK [MQTT-4.3.2-1, MQTT-4.3.2-4, MQTT-2.3.1-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await subscriber(t, port, 'q1/t', 1);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'q1/t', payload: 'one', qos: 1, id: 4242 }));
  const ack = await pub.expectPacket('puback');
  assert.equal(ack.id, 4242);

  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.topic, m.payload.toString(), m.qos, m.dup], ['q1/t', 'one', 1, false]);
  assert.ok(m.id !== undefined && m.id > 0);
  sub.send(P.puback(m.id));
  // After the ack the message is not sent again: the next packet is the reply to our ping.
  sub.send(P.pingreq());
  await sub.expectPacket('pingresp');
});

test('QoS 2 publish: PUBREC, PUBREL, PUBCOMP in both directions, PUBREL flags 0010 [MQTT-4.3.3-1, MQTT-4.3.3-2, MQTT-3.6.1-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await subscriber(t, port, 'q2/t', 2);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });

  pub.send(P.publish({ topic: 'q2/t', payload: 'two', qos: 2, id: 17 }));
  assert.equal((await pub.expectPacket('pubrec')).id, 17);
  pub.send(P.pubrel(17));
  assert.equal((await pub.expectPacket('pubcomp')).id, 17);

  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.topic, m.payload.toString(), m.qos], ['q2/t', 'two', 2]);
  assert.ok(m.id !== undefined && m.id > 0);
  sub.send(P.pubrec(m.id));
  const rel = await sub.expectPacket('pubrel');
  assert.equal(rel.id, m.id);
  assert.equal(rel.flags, 0x02);
  sub.send(P.pubcomp(m.id));
  sub.send(P.pingreq());
  await sub.expectPacket('pingresp');
});

test('MQTT.js publishes and receives at QoS 0, 1 and 2 end to end', T, async (t) => {
  const { url } = await startBroker(t);
  const sub = await connectMqtt(t, url);
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('mjs/#', { qos: 2 });
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('mjs/0', 'a', { qos: 0 });
  await pub.publishAsync('mjs/1', 'b', { qos: 1 });
  await pub.publishAsync('mjs/2', 'c', { qos: 2 });
  const msgs = await got.waitFor(3);
  assert.deepEqual(
    msgs.map((m) => [m.topic, m.payload, m.qos]).sort(),
    [
      ['mjs/0', 'a', 0],
      ['mjs/1', 'b', 1],
      ['mjs/2', 'c', 2],
    ],
  );
});

test('messages are delivered at the lower of publish QoS and granted QoS [MQTT-3.8.4-6]', T, async (t) => {
  const { port } = await startBroker(t);
  const s0 = await subscriber(t, port, 'down/t', 0);
  const s1 = await subscriber(t, port, 'down/t', 1);
  const s2 = await subscriber(t, port, 'down/t', 2);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });

  pub.send(P.publish({ topic: 'down/t', payload: 'q2', qos: 2, id: 1 }));
  await pub.expectPacket('pubrec');
  pub.send(P.pubrel(1));
  await pub.expectPacket('pubcomp');
  const m0 = await s0.expectPacket('publish');
  const m1 = await s1.expectPacket('publish');
  const m2 = await s2.expectPacket('publish');
  assert.deepEqual([m0.qos, m1.qos, m2.qos], [0, 1, 2]);
  assert.equal(m0.id, undefined);

  s2.send(P.pubrec(m2.id ?? 0));
  assert.equal((await s2.expectPacket('pubrel')).id, m2.id);
  s2.send(P.pubcomp(m2.id ?? 0));
  // QoS 0 publish is never upgraded.
  pub.send(P.publish({ topic: 'down/t', payload: 'q0', qos: 0 }));
  const up = await s2.expectPacket('publish');
  assert.deepEqual([up.payload.toString(), up.qos], ['q0', 0]);
});

test('an unacknowledged QoS 1 message is re-sent with DUP set and the same packet id when the session resumes [MQTT-4.4.0-1, MQTT-3.3.1-1]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const id = clientId('redeliver');
  const sub = await subscriber(t, port, 'redeliver/t', 1, { clientId: id, clean: false });
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('redeliver/t', 'unacked', { qos: 1 });
  const first = await sub.expectPacket('publish');
  assert.equal(first.dup, false);
  sub.close(); // no PUBACK, network drop

  const back = await RawClient.connect(port, t);
  const connack = await back.handshake({ clientId: id, clean: false });
  assert.equal(connack.sessionPresent, true);
  const again = await back.expectPacket('publish');
  assert.equal(again.payload.toString(), 'unacked');
  assert.equal(again.dup, true);
  assert.equal(again.id, first.id);
  assert.equal(again.qos, 1);
  back.send(P.puback(again.id ?? 0));
});

test('an unacknowledged PUBREL is re-sent with the same packet id when the session resumes [MQTT-4.4.0-1]', T, async (t) => {
  const { port, url } = await startBroker(t);
  const id = clientId('rel');
  const sub = await subscriber(t, port, 'rel/t', 2, { clientId: id, clean: false });
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('rel/t', 'two', { qos: 2 });
  const m = await sub.expectPacket('publish');
  sub.send(P.pubrec(m.id ?? 0));
  const rel = await sub.expectPacket('pubrel');
  sub.close(); // no PUBCOMP

  const back = await RawClient.connect(port, t);
  assert.equal((await back.handshake({ clientId: id, clean: false })).sessionPresent, true);
  const again = await back.expectPacket('pubrel');
  assert.equal(again.id, rel.id);
  back.send(P.pubcomp(again.id));
  back.send(P.pingreq());
  await back.expectPacket('pingresp'); // the message itself is not re-sent after PUBREC
});

test('QoS 2 exactly once: a re-sent PUBLISH (DUP) with the same id before PUBREL is not routed twice [MQTT-4.3.3-2]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await subscriber(t, port, 'once/t', 2);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'once/t', payload: 'exactly-once', qos: 2, id: 99 }));
  assert.equal((await pub.expectPacket('pubrec')).id, 99);
  pub.send(P.publish({ topic: 'once/t', payload: 'exactly-once', qos: 2, id: 99, dup: true }));
  assert.equal((await pub.expectPacket('pubrec')).id, 99, 'the duplicate is acknowledged again');
  pub.send(P.pubrel(99));
  assert.equal((await pub.expectPacket('pubcomp')).id, 99);
  pub.send(P.publish({ topic: 'once/t', payload: 'marker', qos: 0 }));

  // Everything up to the marker: complete each QoS 2 flow and count the copies.
  let copies = 0;
  for (;;) {
    const p = await sub.next();
    if (p.type === 'pubrel') sub.send(P.pubcomp(p.id));
    if (p.type !== 'publish') continue;
    if (p.payload.toString() === 'marker') break;
    assert.equal(p.payload.toString(), 'exactly-once');
    copies += 1;
    sub.send(P.pubrec(p.id ?? 0));
  }
  assert.equal(copies, 1, 'the duplicate PUBLISH was not delivered a second time');
});

test('1000 QoS 1 messages on one topic arrive in publish order [MQTT-4.6.0-5, MQTT-4.6.0-6]', { timeout: 20_000 }, async (t) => {
  const { url } = await startBroker(t, { limits: { maxQueued: 5000 } });
  const sub = await connectMqtt(t, url);
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('order/t', { qos: 1 });
  const pub = await connectMqtt(t, url);
  const sent: Promise<unknown>[] = [];
  for (let i = 0; i < 1000; i++) sent.push(pub.publishAsync('order/t', String(i), { qos: 1 }));
  await Promise.all(sent);
  const msgs = await got.waitFor(1000, 15_000);
  const payloads = msgs.map((m) => Number(m.payload));
  assert.deepEqual(payloads, Array.from({ length: 1000 }, (_, i) => i));
  assert.ok(msgs.every((m) => m.qos === 1));
});
