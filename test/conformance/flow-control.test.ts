/**
 * Flow control [MQTT 5.0 §4.9]: the broker honours the client's Receive
 * Maximum, and enforces its own (`mqtt.receiveMaximum`).
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { Client5, P, Prop, RC, ack, publish } from './helpers/v5.js';

const T = { timeout: 10_000 };
const TERN = isMosquitto ? 'Tern configuration with no mosquitto equivalent' : false;

suite('receive maximum (v5)', { concurrency: 4 }, () => {
  test('the broker sends no more unacknowledged QoS 1 PUBLISH than the client Receive Maximum [MQTT-3.3.4-9, MQTT-4.9.0-1, MQTT-4.9.0-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await Client5.connected(port, t, { properties: [[Prop.RECEIVE_MAXIMUM, 2]] });
    await sub.sub(1, [{ filter: 'rm/t', qos: 1 }]);
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 5; i++) pub.send(publish({ topic: 'rm/t', payload: `m${i}`, qos: 1, id: i + 1 }));
    for (let i = 0; i < 5; i++) await pub.expect('puback');
    const first = (await sub.sync()).filter((p) => p.name === 'publish');
    assert.deepEqual(
      first.map((p) => p.payload.toString()),
      ['m0', 'm1'],
      'only Receive Maximum in flight',
    );
    sub.send(P.puback(first[0]!.packetId));
    const next = (await sub.sync()).filter((p) => p.name === 'publish');
    assert.deepEqual(
      next.map((p) => p.payload.toString()),
      ['m2'],
      'one acknowledgement frees one slot',
    );
    // A PUBACK with an error reason code also frees the slot [MQTT-3.3.4-9].
    sub.send(ack(P.PT.PUBACK, first[1]!.packetId, 0x80));
    const last = (await sub.sync()).filter((p) => p.name === 'publish');
    assert.deepEqual(
      last.map((p) => p.payload.toString()),
      ['m3'],
    );
  });

  test('with the quota at zero the broker still answers other packets: PINGREQ, SUBSCRIBE, QoS 1 PUBLISH [MQTT-3.3.4-10, MQTT-4.9.0-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await Client5.connected(port, t, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
    await sub.sub(1, [{ filter: 'rz/t', qos: 1 }]);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'rz/t', payload: 'a', qos: 1, id: 1 }), publish({ topic: 'rz/t', payload: 'b', qos: 1, id: 2 }));
    await pub.expect('puback');
    await pub.expect('puback');
    assert.equal((await sub.expect('publish')).payload.toString(), 'a');
    sub.send(P.subscribe(2, ['rz/other'], { protocolVersion: 5 }), publish({ topic: 'rz/none', payload: 'x', qos: 1, id: 9 }));
    const got = await sub.sync();
    assert.deepEqual(
      got.map((p) => p.name),
      ['suback', 'puback'],
    );
  });

  test('a QoS 2 message holds its slot until PUBCOMP, not PUBREC [MQTT-4.9.0-2, MQTT 5.0 §4.9]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await Client5.connected(port, t, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
    await sub.sub(1, [{ filter: 'r2/t', qos: 2 }]);
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 2; i++) {
      pub.send(publish({ topic: 'r2/t', payload: `m${i}`, qos: 2, id: i + 1 }));
      await pub.expect('pubrec');
      pub.send(P.pubrel(i + 1));
      await pub.expect('pubcomp');
    }
    const m0 = await sub.expect('publish');
    sub.send(P.pubrec(m0.packetId));
    const afterRec = await sub.sync();
    assert.deepEqual(
      afterRec.map((p) => p.name),
      ['pubrel'],
      'no new PUBLISH after PUBREC',
    );
    sub.send(P.pubcomp(m0.packetId));
    const m1 = await sub.expect('publish');
    assert.equal(m1.payload.toString(), 'm1');
  });

  test('QoS 0 messages are not limited by Receive Maximum when nothing is queued [MQTT 5.0 §4.9]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await Client5.connected(port, t, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
    await sub.sub(1, [{ filter: 'r0/t', qos: 0 }]);
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 5; i++) pub.send(publish({ topic: 'r0/t', payload: `m${i}` }));
    pub.send(publish({ topic: 'r0/t', payload: 'end', qos: 1, id: 1 }));
    await pub.expect('puback');
    const got = (await sub.sync()).filter((p) => p.name === 'publish');
    assert.equal(got.length, 6);
  });

  test('the broker announces mqtt.receiveMaximum and disconnects with 0x93 when a client exceeds it [MQTT 5.0 §3.3.4, §4.9]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { receiveMaximum: 2 } });
    const { client: c, connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.num(Prop.RECEIVE_MAXIMUM), 2);
    // QoS 2 stays unacknowledged (in the spec's sense) until PUBCOMP.
    c.send(publish({ topic: 'bx/t', payload: '1', qos: 2, id: 1 }));
    c.send(publish({ topic: 'bx/t', payload: '2', qos: 2, id: 2 }));
    await c.expect('pubrec');
    await c.expect('pubrec');
    c.send(publish({ topic: 'bx/t', payload: '3', qos: 2, id: 3 }));
    const d = await c.expectDisconnect();
    assert.equal(d.reasonCode, RC.RECEIVE_MAXIMUM_EXCEEDED);
  });

  test('within mqtt.receiveMaximum, completing a QoS 2 flow frees a slot', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { receiveMaximum: 1 } });
    const c = await Client5.connected(port, t);
    for (let i = 1; i <= 3; i++) {
      c.send(publish({ topic: 'bf/t', payload: String(i), qos: 2, id: i }));
      await c.expect('pubrec');
      c.send(P.pubrel(i));
      await c.expect('pubcomp');
    }
    assert.equal(c.closed, false);
  });
});
