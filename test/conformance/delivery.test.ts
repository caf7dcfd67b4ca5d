/**
 * MQTT 5.0 delivery basics seen by a v5 client [MQTT 5.0 §1.5, §2.2, §3.3.1,
 * §4.3-§4.7]: wire encoding of server packets, packet identifiers, DUP,
 * retained messages, ordering, topic matching, QoS flows as receiver.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { Client5, P, Prop, RC, elapse, publish, subscribe, type Connect5Options } from './helpers/v5.js';

const T = { timeout: 10_000 };

async function subscriber(t: TestContext, port: number, filter: string, qos = 2, o: Connect5Options = {}): Promise<Client5> {
  const c = await Client5.connected(port, t, o);
  await c.sub(1, [{ filter, qos }]);
  return c;
}

suite('wire format of server packets (v5)', { concurrency: 4 }, () => {
  test('server packets use minimal remaining lengths and property lengths of 0 when there are no properties [MQTT-1.5.5-1, MQTT-2.2.2-1, MQTT-2.2.1-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'enc/#', 1);
    const pub = await Client5.connected(port, t);
    // Payload sizes straddling the 1-, 2- and 3-byte length boundaries.
    const sizes = [0, 100, 120, 130, 16_370, 16_400];
    for (const [i, n] of sizes.entries()) pub.send(publish({ topic: 'enc/t', payload: Buffer.alloc(n, 0x30 + i), qos: i % 2, id: i % 2 === 1 ? i : undefined }));
    for (const [i, n] of sizes.entries()) {
      const m = await sub.receive();
      assert.equal(m.payload.length, n, 'payload intact: QoS 0 carries no packet id, the property length is present');
      assert.equal(m.qos, i % 2);
      assert.deepEqual(m.props.list, []);
    }
    await sub.sync();
    assert.deepEqual(sub.encodingErrors, []);
  });

  test('QoS 1/2 PUBLISH from the server carry distinct non-zero packet identifiers while in flight, DUP 0 [MQTT-2.2.1-4, MQTT-4.3.2-1, MQTT-4.3.2-2, MQTT-4.3.3-1, MQTT-4.3.3-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'pid/#', 2, { properties: [[Prop.RECEIVE_MAXIMUM, 50]] });
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 10; i++) pub.send(publish({ topic: 'pid/t', payload: String(i), qos: 1, id: i + 1 }));
    for (let i = 0; i < 10; i++) await pub.expect('puback');
    const got = (await sub.sync()).filter((p) => p.name === 'publish');
    assert.equal(got.length, 10);
    const ids = got.map((p) => p.packetId);
    assert.ok(ids.every((id) => id > 0));
    assert.equal(new Set(ids).size, 10);
    assert.ok(got.every((p) => p.dup === false), 'first deliveries have DUP 0 [MQTT-4.3.2-2]');
  });

  test('the DUP flag of a forwarded message does not copy the incoming DUP; QoS 0 always has DUP 0 [MQTT-3.3.1-2, MQTT-3.3.1-3, MQTT-4.3.1-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'dup/#', 1);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'dup/1', payload: 'a', qos: 1, id: 1, dup: true }));
    pub.send(publish({ topic: 'dup/0', payload: 'b', qos: 0 }));
    const a = await sub.receive();
    const b = await sub.receive();
    assert.deepEqual([a.dup, b.dup], [false, false]);
  });

  test('acknowledgements echo the packet identifier of the PUBLISH [MQTT-2.2.1-5, MQTT-4.3.2-4, MQTT-4.3.3-8, MQTT-3.3.4-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(publish({ topic: 'echo/1', payload: 'x', qos: 1, id: 65535 }));
    assert.equal((await c.expect('puback')).packetId, 65535);
    c.send(publish({ topic: 'echo/2', payload: 'x', qos: 2, id: 1234 }));
    assert.equal((await c.expect('pubrec')).packetId, 1234);
    c.send(P.pubrel(1234));
    assert.equal((await c.expect('pubcomp')).packetId, 1234);
  });
});

suite('QoS flows as receiver (v5)', { concurrency: 4 }, () => {
  test('after PUBACK, a QoS 1 PUBLISH with the same packet id is a new message, DUP or not [MQTT-4.3.2-5]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'q1new/t', 1);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'q1new/t', payload: 'first', qos: 1, id: 5 }));
    await pub.expect('puback');
    pub.send(publish({ topic: 'q1new/t', payload: 'second', qos: 1, id: 5, dup: true }));
    await pub.expect('puback');
    assert.deepEqual([(await sub.receive()).payload.toString(), (await sub.receive()).payload.toString()], ['first', 'second']);
  });

  test('after a PUBREC >= 0x80, a QoS 2 PUBLISH with the same packet id is a new message [MQTT-4.3.3-9]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'q2new/t', 2);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'q2new/t', payload: Buffer.from([0xc3, 0x28]), qos: 2, id: 6, properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] }));
    assert.equal((await pub.expect('pubrec')).reasonCode, RC.PAYLOAD_FORMAT_INVALID);
    await pub.publish2({ topic: 'q2new/t', payload: 'valid', id: 6, properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] });
    assert.equal((await sub.receive()).payload.toString(), 'valid');
  });

  test('the QoS 2 acknowledgement sequence completes even after the message expired [MQTT-4.3.3-13]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'q2exp/t', payload: 'x', qos: 2, id: 8, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 1]] }));
    await pub.expect('pubrec');
    await elapse(1300);
    pub.send(P.pubrel(8));
    const comp = await pub.expect('pubcomp');
    assert.deepEqual([comp.packetId, comp.reasonCode], [8, RC.SUCCESS]);
  });

  test('messages from one client on one topic arrive in order at every QoS [MQTT-4.6.0-5, MQTT-4.6.0-6]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'ord/#', 2);
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 30; i++) pub.send(publish({ topic: 'ord/t', payload: String(i), qos: 1, id: i + 1 }));
    const got: string[] = [];
    for (let i = 0; i < 30; i++) got.push((await sub.receive()).payload.toString());
    assert.deepEqual(
      got,
      Array.from({ length: 30 }, (_, i) => String(i)),
    );
  });
});

suite('retained messages and topic matching (v5)', { concurrency: 4 }, () => {
  test('a retained PUBLISH replaces the stored message; an empty retained payload deletes it and is forwarded [MQTT-3.3.1-5, MQTT-3.3.1-6, MQTT-3.3.1-7]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'ret/a', payload: 'v1', qos: 1, id: 1, retain: true }));
    pub.send(publish({ topic: 'ret/a', payload: 'v2', qos: 1, id: 2, retain: true }));
    await pub.expect('puback');
    await pub.expect('puback');
    const s1 = await subscriber(t, port, 'ret/#', 1);
    const m = await s1.receive();
    assert.deepEqual([m.payload.toString(), m.retain], ['v2', true]);
    assert.deepEqual(await s1.sync(), []);
    pub.send(publish({ topic: 'ret/a', payload: '', qos: 1, id: 3, retain: true }));
    await pub.expect('puback');
    const del = await s1.receive();
    assert.equal(del.payload.length, 0, 'the empty retained message is forwarded to current subscribers');
    const s2 = await subscriber(t, port, 'ret/#', 1);
    assert.deepEqual(await s2.sync(), [], 'nothing retained any more');
  });

  test('a PUBLISH with RETAIN 0 neither stores nor removes the retained message [MQTT-3.3.1-8]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'ret0/a', payload: 'kept', qos: 1, id: 1, retain: true }));
    pub.send(publish({ topic: 'ret0/a', payload: 'live', qos: 1, id: 2 }));
    pub.send(publish({ topic: 'ret0/a', payload: '', qos: 1, id: 3 }));
    for (let i = 0; i < 3; i++) await pub.expect('puback');
    const s = await subscriber(t, port, 'ret0/a', 1);
    assert.equal((await s.receive()).payload.toString(), 'kept');
    assert.deepEqual(await s.sync(), []);
  });

  test('wildcards match per level; # matches the parent; $ topics are not matched by leading wildcards [MQTT-4.7.1-1, MQTT-4.7.1-2, MQTT-4.7.2-1, MQTT-3.3.2-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(
      subscribe(1, [
        { filter: 'w/+/c', qos: 0 },
        { filter: 'w/x/#', qos: 0 },
        { filter: '#', qos: 0 },
        { filter: '+/y', qos: 0 },
      ]),
    );
    await c.expect('suback');
    const pub = await Client5.connected(port, t);
    for (const topic of ['w/b/c', 'w/x', 'w/x/y/z', '$SYS/y', '$x/y', 'w//c']) pub.send(publish({ topic, payload: topic }));
    pub.send(publish({ topic: 'end', payload: 'end', qos: 1, id: 1 }));
    await pub.expect('puback');
    const got = (await c.sync()).filter((p) => p.name === 'publish').map((p) => p.topic);
    assert.deepEqual(got, ['w/b/c', 'w/x', 'w/x/y/z', 'w//c', 'end']);
  });

  test('an empty topic name without a topic alias is a protocol error [MQTT-4.7.3-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(publish({ topic: '', payload: 'x', qos: 1, id: 1 }));
    const d = await c.expectDisconnect();
    assert.ok(d.reasonCode === RC.PROTOCOL_ERROR || d.reasonCode === RC.TOPIC_NAME_INVALID, `0x${d.reasonCode.toString(16)}`);
  });

  test('topic matching is exact: no case folding or normalisation [MQTT-4.7.3-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await subscriber(t, port, 'Case/É', 0);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'case/É', payload: '1' }));
    pub.send(publish({ topic: 'Case/E\u0301', payload: '2' })); // decomposed form of É
    pub.send(publish({ topic: 'Case/É', payload: '3' }));
    assert.equal((await c.receive()).payload.toString(), '3');
    assert.deepEqual(await c.sync(), []);
  });
});
