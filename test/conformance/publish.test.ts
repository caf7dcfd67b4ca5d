/**
 * MQTT 5.0 PUBLISH properties and acknowledgements [MQTT 5.0 §3.3-§3.7, §4.3]:
 * payload format, message expiry, topic aliases (both directions), response
 * topic, correlation data, user properties, content type, subscription
 * identifiers, maximum packet size towards the client, ack reason codes.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { Client5, P, Prop, RC, ack, cid, elapse, publish, type Connect5Options } from './helpers/v5.js';

const T = { timeout: 10_000 };
const TERN = isMosquitto ? 'Tern configuration with no mosquitto equivalent' : false;

/** A connected v5 client subscribed to `filter` (QoS 2 unless given). */
async function subscriber(t: TestContext, port: number, filter: string, o: Connect5Options = {}, qos = 2): Promise<Client5> {
  const c = await Client5.connected(port, t, o);
  const codes = await c.sub(1, [{ filter, qos }]);
  assert.ok((codes[0] ?? 0x80) < 0x80, `SUBACK 0x${(codes[0] ?? 0).toString(16)}`);
  return c;
}

suite('PUBLISH properties (v5)', { concurrency: 4 }, () => {
  test('payload format indicator and content type are forwarded unaltered [MQTT-3.3.2-4, MQTT-3.3.2-20]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'pf/#');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'pf/utf8', payload: 'héllo', properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1], [Prop.CONTENT_TYPE, 'text/plain; charset=utf-8']] }));
    pub.send(publish({ topic: 'pf/bin', payload: Buffer.from([0xff, 0x00]), properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 0]] }));
    const a = await sub.receive();
    assert.equal(a.props.num(Prop.PAYLOAD_FORMAT_INDICATOR), 1);
    assert.equal(a.props.str(Prop.CONTENT_TYPE), 'text/plain; charset=utf-8');
    assert.equal(a.payload.toString(), 'héllo');
    const b = await sub.receive();
    assert.equal(b.props.num(Prop.PAYLOAD_FORMAT_INDICATOR) ?? 0, 0);
    assert.deepEqual([...b.payload], [0xff, 0x00]);
  });

  test('payload format indicator 1 with invalid UTF-8 at QoS 1: PUBACK 0x99 and not forwarded [MQTT 5.0 §3.3.2.3.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'pfi/#');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'pfi/bad', payload: Buffer.from([0x61, 0xc3, 0x28]), qos: 1, id: 1, properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] }));
    const a = await pub.expect('puback');
    assert.equal(a.packetId, 1);
    assert.equal(a.reasonCode, RC.PAYLOAD_FORMAT_INVALID);
    assert.deepEqual(await sub.sync(), [], 'not forwarded');
  });

  test('payload format indicator 1 with invalid UTF-8 at QoS 0: DISCONNECT 0x99 [MQTT 5.0 §3.3.2.3.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'pfi/bad', payload: Buffer.from([0xed, 0xa0, 0x80]), properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.PAYLOAD_FORMAT_INVALID);
  });

  test('response topic, correlation data, user properties (order and duplicates) and content type pass through unaltered [MQTT-3.3.2-15, MQTT-3.3.2-16, MQTT-3.3.2-17, MQTT-3.3.2-18, MQTT-3.3.2-20]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'rr/#');
    const pub = await Client5.connected(port, t);
    const corr = Buffer.from([0x00, 0xff, 0x10, 0x80]);
    const users: Array<[string, string]> = [
      ['b', '2'],
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
      ['', ''],
    ];
    pub.send(
      publish({
        topic: 'rr/req',
        payload: 'ping',
        qos: 1,
        id: 9,
        properties: [
          [Prop.RESPONSE_TOPIC, 'rr/reply/42'],
          [Prop.CORRELATION_DATA, corr],
          [Prop.CONTENT_TYPE, 'application/x-test'],
          ...users.map((u) => [Prop.USER_PROPERTY, u] as const),
        ],
      }),
    );
    await pub.expect('puback');
    const m = await sub.receive();
    assert.equal(m.props.str(Prop.RESPONSE_TOPIC), 'rr/reply/42');
    assert.deepEqual(m.props.get(Prop.CORRELATION_DATA), corr);
    assert.equal(m.props.str(Prop.CONTENT_TYPE), 'application/x-test');
    assert.deepEqual(m.props.all(Prop.USER_PROPERTY), users);
  });

  test(
    'a response topic containing a wildcard is a protocol error [MQTT-3.3.2-14]',
    T,
    async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'rr/req', payload: 'x', qos: 1, id: 1, properties: [[Prop.RESPONSE_TOPIC, 'rr/+/reply']] }));
    const rest = await pub.expectClose();
    assert.ok(!rest.some((p) => p.name === 'puback'), 'not acknowledged');
  });

  test('a PUBLISH from a client carrying a subscription identifier is a protocol error [MQTT-3.3.4-6]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'sid/x', payload: 'x', qos: 1, id: 1, properties: [[Prop.SUBSCRIPTION_IDENTIFIER, 5]] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('a topic name with a wildcard gets DISCONNECT 0x90 [MQTT-3.3.2-2, MQTT-4.7.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'a/+/b', payload: 'x', qos: 1, id: 1 }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.TOPIC_NAME_INVALID);
  });

  test('a topic name with invalid UTF-8 is malformed: DISCONNECT 0x81 [MQTT-1.5.4-1, MQTT-3.3.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: Buffer.from([0x61, 0xc3, 0x28]), payload: 'x', qos: 1, id: 1 }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.MALFORMED_PACKET);
  });

  test('a topic name with U+0000 is malformed: DISCONNECT 0x81 [MQTT-1.5.4-2, MQTT-4.7.3-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: Buffer.from('a\u0000b'), payload: 'x', qos: 1, id: 1 }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.MALFORMED_PACKET);
  });

  test('a user property with invalid UTF-8 is malformed: DISCONNECT 0x81 [MQTT-1.5.7-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    const badPair = Buffer.concat([Buffer.from([Prop.USER_PROPERTY]), P.str('k'), P.str(Buffer.from([0xc3, 0x28]))]);
    const body = Buffer.concat([P.str('up/t'), P.u16(1), P.varint(badPair.length), badPair, Buffer.from('x')]);
    pub.send(P.packet(P.PT.PUBLISH, 0x02, body));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.MALFORMED_PACKET);
  });

  test('a BOM (U+FEFF) in a topic is neither skipped nor stripped [MQTT-1.5.4-3, MQTT-4.7.3-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const exact = await subscriber(t, port, '\uFEFFbom/t');
    const stripped = await subscriber(t, port, 'bom/t');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: '\uFEFFbom/t', payload: 'x', qos: 1, id: 1 }));
    await pub.expect('puback');
    assert.equal((await exact.receive()).topic, '\uFEFFbom/t');
    assert.deepEqual(await stripped.sync(), []);
  });

  test('a property repeated where it may appear once is a protocol error: DISCONNECT 0x82 [MQTT 5.0 §2.2.2.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'dup/t', payload: 'x', qos: 1, id: 1, properties: [[Prop.CONTENT_TYPE, 'a'], [Prop.CONTENT_TYPE, 'b']] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('an unknown property identifier is malformed: DISCONNECT 0x81 [MQTT 5.0 §2.2.2.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    const body = Buffer.concat([P.str('unk/t'), P.u16(1), Buffer.from([0x02, 0x7f, 0x00]), Buffer.from('x')]);
    pub.send(P.packet(P.PT.PUBLISH, 0x02, body));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.MALFORMED_PACKET);
  });

  test('a PUBLISH with QoS 3 is malformed: the connection closes with DISCONNECT 0x81 [MQTT-3.3.1-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'q3/t', payload: 'x', qos: 3, id: 1 }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.MALFORMED_PACKET);
  });
});

suite('message expiry (v5)', { concurrency: 4 }, () => {
  test('a message whose expiry passed before delivery started is never delivered [MQTT-3.3.2-5]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await subscriber(t, port, 'exp/t', { clientId: id, properties: props });
    a.close();
    await a.expectClose();
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'exp/t', payload: 'expires', qos: 1, id: 1, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 1]] }));
    pub.send(publish({ topic: 'exp/t', payload: 'stays', qos: 1, id: 2 }));
    await pub.expect('puback');
    await pub.expect('puback');
    await elapse(1500);
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    const m = await b.receive();
    assert.equal(m.payload.toString(), 'stays');
    assert.deepEqual(await b.sync(), [], 'the expired message is not delivered');
  });

  test('a delivered message carries the received expiry minus the time it waited [MQTT-3.3.2-6]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await subscriber(t, port, 'exp2/t', { clientId: id, properties: props });
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'exp2/t', payload: 'now', qos: 1, id: 1, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 10]] }));
    const now = await a.receive();
    const first = now.props.num(Prop.MESSAGE_EXPIRY_INTERVAL);
    assert.ok(first !== undefined && first <= 10 && first >= 9, `immediate delivery: ${first}`);
    a.close();
    await a.expectClose();
    pub.send(publish({ topic: 'exp2/t', payload: 'later', qos: 1, id: 2, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 10]] }));
    await pub.expect('puback');
    await pub.expect('puback');
    await elapse(2100);
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    const later = await b.receive();
    const left = later.props.num(Prop.MESSAGE_EXPIRY_INTERVAL);
    assert.ok(left !== undefined && left <= 8 && left >= 6, `after waiting ~2 s: ${left}`);
  });

  test('a retained message stops being sent to new subscribers once expired, and carries its remaining expiry until then [MQTT-3.3.2-5, MQTT-3.3.2-6]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'rexp/t', payload: 'r', qos: 1, id: 1, retain: true, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 2]] }));
    await pub.expect('puback');
    await elapse(1100);
    const early = await subscriber(t, port, 'rexp/t');
    const m = await early.receive();
    assert.equal(m.retain, true);
    const left = m.props.num(Prop.MESSAGE_EXPIRY_INTERVAL);
    assert.ok(left !== undefined && left <= 1, `remaining expiry ${left}`);
    await elapse(1400);
    const late = await subscriber(t, port, 'rexp/t');
    assert.deepEqual(await late.sync(), [], 'expired retained message not sent');
  });

  test('a QoS 2 message already sent is completed after its expiry: resent with DUP on reconnect [MQTT-4.3.3-7, MQTT-4.3.3-3, MQTT-3.3.1-1, MQTT-4.4.0-1]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await subscriber(t, port, 'exp3/t', { clientId: id, properties: props });
    const pub = await Client5.connected(port, t);
    await pub.publish2({ topic: 'exp3/t', payload: 'q2', id: 1, properties: [[Prop.MESSAGE_EXPIRY_INTERVAL, 1]] });
    const first = await a.expect('publish'); // not acknowledged
    a.close();
    await a.expectClose();
    await elapse(1500);
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    const again = await b.expect('publish');
    assert.equal(again.packetId, first.packetId);
    assert.equal(again.dup, true);
    assert.equal(again.payload.toString(), 'q2');
  });
});

suite('topic aliases (v5)', { concurrency: 4 }, () => {
  test('an inbound topic alias is set by a PUBLISH with a topic and used by later ones with an empty topic [MQTT-3.3.2-12]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'ta/#');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'ta/one', payload: '1', properties: [[Prop.TOPIC_ALIAS, 1]] }));
    pub.send(publish({ topic: '', payload: '2', properties: [[Prop.TOPIC_ALIAS, 1]] }));
    pub.send(publish({ topic: 'ta/two', payload: '3', properties: [[Prop.TOPIC_ALIAS, 1]] })); // remap
    pub.send(publish({ topic: '', payload: '4', qos: 1, id: 1, properties: [[Prop.TOPIC_ALIAS, 1]] }));
    await pub.expect('puback');
    const got = [await sub.receive(), await sub.receive(), await sub.receive(), await sub.receive()];
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload.toString()]),
      [
        ['ta/one', '1'],
        ['ta/one', '2'],
        ['ta/two', '3'],
        ['ta/two', '4'],
      ],
    );
    assert.ok(!got.some((m) => m.props.has(Prop.TOPIC_ALIAS)), 'the publisher alias is not forwarded to a client that allows none [MQTT-3.1.2-27]');
  });

  test('every alias from 1 to the announced Topic Alias Maximum is accepted [MQTT-3.3.2-12]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { topicAliasMaximum: 3 } });
    const sub = await subscriber(t, port, 'tam/#');
    const pub = await Client5.connected(port, t);
    for (const alias of [1, 2, 3]) pub.send(publish({ topic: `tam/${alias}`, payload: 'x', properties: [[Prop.TOPIC_ALIAS, alias]] }));
    for (const alias of [3, 2, 1]) pub.send(publish({ topic: '', payload: 'y', properties: [[Prop.TOPIC_ALIAS, alias]] }));
    const topics: string[] = [];
    for (let i = 0; i < 6; i++) topics.push((await sub.receive()).topic);
    assert.deepEqual(topics, ['tam/1', 'tam/2', 'tam/3', 'tam/3', 'tam/2', 'tam/1']);
  });

  test('topic alias 0 gets DISCONNECT 0x94 [MQTT-3.3.2-8, MQTT 5.0 §3.3.2.3.4]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'ta0/t', payload: 'x', properties: [[Prop.TOPIC_ALIAS, 0]] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.TOPIC_ALIAS_INVALID);
  });

  test('a topic alias above the announced maximum gets DISCONNECT 0x94 [MQTT-3.3.2-9, MQTT-3.2.2-17, MQTT 5.0 §3.3.2.3.4]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { topicAliasMaximum: 2 } });
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'tax/t', payload: 'x', properties: [[Prop.TOPIC_ALIAS, 3]] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.TOPIC_ALIAS_INVALID);
  });

  test('an empty topic with an alias never set is a protocol error: DISCONNECT 0x82 [MQTT 5.0 §3.3.4]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: '', payload: 'x', properties: [[Prop.TOPIC_ALIAS, 4]] }));
    assert.equal((await pub.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('topic alias mappings do not carry over to a new connection of the same session [MQTT-3.3.2-7]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await Client5.connected(port, t, { clientId: id, properties: props });
    a.send(publish({ topic: 'tac/t', payload: 'x', qos: 1, id: 1, properties: [[Prop.TOPIC_ALIAS, 1]] }));
    await a.expect('puback');
    a.close();
    await a.expectClose();
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    b.send(publish({ topic: '', payload: 'y', qos: 1, id: 2, properties: [[Prop.TOPIC_ALIAS, 1]] }));
    assert.equal((await b.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('no topic alias is sent to a client that announced no Topic Alias Maximum, or 0 [MQTT-3.1.2-27]', T, async (t) => {
    const { port } = await startBroker(t);
    const none = await subscriber(t, port, 'tan/#');
    const zero = await subscriber(t, port, 'tan/#', { properties: [[Prop.TOPIC_ALIAS_MAXIMUM, 0]] });
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 3; i++) pub.send(publish({ topic: 'tan/a/long/topic/name', payload: String(i) }));
    for (const c of [none, zero]) {
      for (let i = 0; i < 3; i++) {
        const m = await c.receive();
        assert.equal(m.topic, 'tan/a/long/topic/name');
        assert.equal(m.props.has(Prop.TOPIC_ALIAS), false);
      }
    }
  });

  test('outbound topic aliases never exceed the client Topic Alias Maximum [MQTT-3.1.2-26, MQTT-3.3.2-11]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'tao/#', { properties: [[Prop.TOPIC_ALIAS_MAXIMUM, 2]] });
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 12; i++) pub.send(publish({ topic: `tao/long/topic/name/${i % 4}`, payload: String(i) }));
    for (let i = 0; i < 12; i++) {
      const m = await sub.receive();
      const alias = m.props.num(Prop.TOPIC_ALIAS);
      if (alias !== undefined) assert.ok(alias >= 1 && alias <= 2, `alias ${alias}`);
    }
  });

  test(
    'the broker uses outbound topic aliases up to the client maximum, and they resolve to the right topics [MQTT 5.0 §3.3.2.3.4]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const sub = await subscriber(t, port, 'tau/#', { properties: [[Prop.TOPIC_ALIAS_MAXIMUM, 2]] });
      const pub = await Client5.connected(port, t);
      const topics = ['tau/sensor/alpha', 'tau/sensor/beta', 'tau/sensor/alpha', 'tau/sensor/beta', 'tau/sensor/gamma', 'tau/sensor/alpha', 'tau/sensor/gamma'];
      for (const topic of topics) pub.send(publish({ topic, payload: topic }));
      const aliases = new Map<number, string>();
      let used = 0;
      for (const expected of topics) {
        const m = await sub.receive();
        const alias = m.props.num(Prop.TOPIC_ALIAS);
        let topic = m.topic;
        if (alias !== undefined) {
          assert.ok(alias >= 1 && alias <= 2);
          if (topic === '') {
            used += 1;
            topic = aliases.get(alias) ?? '(unknown alias)';
          } else aliases.set(alias, topic);
        }
        assert.equal(topic, expected);
        assert.equal(m.payload.toString(), expected);
      }
      assert.ok(used > 0, 'at least one PUBLISH used an alias with an empty topic');
    },
  );
});

suite('outbound topic aliases across connections (v5)', { concurrency: 4 }, () => {
  test('outbound alias mappings are not carried to a new connection: an unacknowledged QoS 1 PUBLISH is resent with its topic [MQTT-3.3.2-7, MQTT-4.4.0-1, MQTT-4.3.2-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60], [Prop.TOPIC_ALIAS_MAXIMUM, 4]] as const;
    const topic = 'tacx/a/long/enough/topic';
    const a = await subscriber(t, port, 'tacx/#', { clientId: id, properties: props }, 1);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic, payload: 'one', qos: 1, id: 1 }));
    const first = await a.receive();
    assert.equal(first.topic, topic);
    pub.send(publish({ topic, payload: 'two', qos: 1, id: 2 }));
    const second = await a.expect('publish'); // not acknowledged
    assert.equal(second.payload.toString(), 'two');
    a.close();
    await a.expectClose();
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    const again = await b.expect('publish');
    assert.equal(again.dup, true);
    assert.equal(again.topic, topic, 'the new connection has no alias mapping yet');
  });
});

suite('subscription identifiers on delivery (v5)', { concurrency: 4 }, () => {
  test('overlapping subscriptions: one copy at the highest QoS, carrying every matching subscription identifier [MQTT-3.3.4-2, MQTT-3.3.4-3, MQTT-3.3.4-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    await c.sub(1, [{ filter: 'sid/+', qos: 1 }], [[Prop.SUBSCRIPTION_IDENTIFIER, 7]]);
    await c.sub(2, [{ filter: 'sid/#', qos: 2 }], [[Prop.SUBSCRIPTION_IDENTIFIER, 300]]);
    await c.sub(3, [{ filter: 'sid/x', qos: 0 }]);
    const pub = await Client5.connected(port, t);
    await pub.publish2({ topic: 'sid/x', payload: 'm', id: 1 });
    const m = await c.receive();
    assert.equal(m.qos, 2, 'the maximum QoS of the matching subscriptions');
    assert.deepEqual(m.props.all(Prop.SUBSCRIPTION_IDENTIFIER).sort(), [300, 7].sort());
    assert.deepEqual(await c.sync(), [], 'a single copy (Tern never sends the extra copies the spec allows)');
  });

  test('a subscription without an identifier delivers no identifier; retained messages on subscribe carry the identifier', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'sidr/t', payload: 'r', qos: 1, id: 1, retain: true }));
    await pub.expect('puback');
    const c = await Client5.connected(port, t);
    await c.sub(1, [{ filter: 'sidr/#', qos: 1 }], [[Prop.SUBSCRIPTION_IDENTIFIER, 42]]);
    const r = await c.receive();
    assert.equal(r.retain, true);
    assert.deepEqual(r.props.all(Prop.SUBSCRIPTION_IDENTIFIER), [42]);
    const plain = await Client5.connected(port, t);
    await plain.sub(1, [{ filter: 'sidr/t', qos: 1, options: 0x20 }]);
    pub.send(publish({ topic: 'sidr/t', payload: 'live', qos: 1, id: 2 }));
    const m = await plain.receive();
    assert.equal(m.props.has(Prop.SUBSCRIPTION_IDENTIFIER), false);
  });

  test('re-subscribing with a new identifier replaces the old one [MQTT-3.8.4-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    await c.sub(1, [{ filter: 'sidx/t', qos: 1 }], [[Prop.SUBSCRIPTION_IDENTIFIER, 1]]);
    await c.sub(2, [{ filter: 'sidx/t', qos: 1 }], [[Prop.SUBSCRIPTION_IDENTIFIER, 2]]);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'sidx/t', payload: 'm', qos: 1, id: 1 }));
    assert.deepEqual((await c.receive()).props.all(Prop.SUBSCRIPTION_IDENTIFIER), [2]);
  });

  test('subscription identifier 0 is a protocol error: DISCONNECT 0x82 [MQTT 5.0 §3.8.2.1.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.subscribe(1, [{ filter: 'sid0/t', qos: 0 }], { protocolVersion: 5, properties: [[Prop.SUBSCRIPTION_IDENTIFIER, 0]] }));
    assert.equal((await c.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });
});

suite('maximum packet size towards the client (v5)', { concurrency: 4 }, () => {
  test('the broker never sends a PUBLISH larger than the client Maximum Packet Size: it drops it [MQTT-3.1.2-24, MQTT-3.1.2-25]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'mps/#', { properties: [[Prop.MAXIMUM_PACKET_SIZE, 64]] });
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'mps/big', payload: Buffer.alloc(100, 0x62) }));
    pub.send(publish({ topic: 'mps/big', payload: Buffer.alloc(100, 0x62), qos: 1, id: 1 }));
    pub.send(publish({ topic: 'mps/big', payload: Buffer.alloc(100, 0x62), qos: 2, id: 2 }));
    pub.send(publish({ topic: 'mps/small', payload: 'ok', qos: 1, id: 3 }));
    const m = await sub.receive();
    assert.equal(m.topic, 'mps/small');
    await sub.sync();
    assert.ok(
      sub.received.every((p) => p.size <= 64),
      `sizes ${sub.received.map((p) => p.size).join(',')}`,
    );
  });

  test('a dropped oversized QoS 1 message counts as delivered: it does not hold a receive-maximum slot [MQTT-3.1.2-25]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'mpq/#', { properties: [[Prop.MAXIMUM_PACKET_SIZE, 64], [Prop.RECEIVE_MAXIMUM, 1]] });
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'mpq/big', payload: Buffer.alloc(200, 0x62), qos: 1, id: 1 }));
    pub.send(publish({ topic: 'mpq/small', payload: 'ok', qos: 1, id: 2 }));
    const m = await sub.receive();
    assert.equal(m.topic, 'mpq/small');
  });

  test('a retained message larger than the client Maximum Packet Size is not sent on subscribe [MQTT-3.1.2-24]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'mpr/big', payload: Buffer.alloc(200, 0x62), qos: 1, id: 1, retain: true }));
    pub.send(publish({ topic: 'mpr/small', payload: 's', qos: 1, id: 2, retain: true }));
    await pub.expect('puback');
    await pub.expect('puback');
    const sub = await Client5.connected(port, t, { properties: [[Prop.MAXIMUM_PACKET_SIZE, 64]] });
    await sub.sub(1, [{ filter: 'mpr/#', qos: 1 }]);
    const m = await sub.receive();
    assert.equal(m.topic, 'mpr/small');
    await sub.sync();
    assert.ok(sub.received.every((p) => p.size <= 64));
  });

  test('a server DISCONNECT (with its reason string) fits the client Maximum Packet Size [MQTT-3.14.2-3, MQTT-3.1.2-24]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t, { properties: [[Prop.MAXIMUM_PACKET_SIZE, 16]] });
    c.send(publish({ topic: 'mpd/+/wildcard/in/a/topic/name', payload: 'x', qos: 1, id: 1 }));
    const d = await c.expectDisconnect();
    assert.equal(d.reasonCode, RC.TOPIC_NAME_INVALID);
    assert.ok(d.size <= 16, `DISCONNECT is ${d.size} bytes`);
  });

  test(
    'acknowledgements fit a small client Maximum Packet Size: no Reason String or User Property, valid reason codes [MQTT-3.4.2-1, MQTT-3.4.2-2, MQTT-3.4.2-3, MQTT-3.5.2-1, MQTT-3.5.2-2, MQTT-3.5.2-3, MQTT-3.6.2-1, MQTT-3.6.2-2, MQTT-3.6.2-3, MQTT-3.7.2-1, MQTT-3.7.2-2, MQTT-3.7.2-3, MQTT-3.9.2-1, MQTT-3.9.2-2, MQTT-3.11.2-1, MQTT-3.11.2-2]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const c = await Client5.connected(port, t, { properties: [[Prop.MAXIMUM_PACKET_SIZE, 20]] });
      c.send(publish({ topic: 'ackmps/none', payload: 'x', qos: 1, id: 1 })); // PUBACK 0x10
      c.send(publish({ topic: 'ackmps/none', payload: Buffer.from([0xc3, 0x28]), qos: 1, id: 2, properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] })); // 0x99
      c.send(publish({ topic: 'ackmps/none', payload: 'x', qos: 2, id: 3 })); // PUBREC 0x10
      c.send(P.pubrel(3)); // PUBCOMP 0x00
      c.send(P.pubrel(77)); // PUBCOMP 0x00 (unknown id, answered as success)
      c.send(P.pubrec(78)); // PUBREL 0x92
      c.send(P.subscribe(4, ['ackmps/#/bad', 'ackmps/ok'], { protocolVersion: 5 })); // 0x8F + granted
      c.send(P.unsubscribe(5, ['ackmps/never'], { protocolVersion: 5 })); // 0x11
      const got = await c.sync();
      assert.deepEqual(
        got.map((p) => p.name),
        ['puback', 'puback', 'pubrec', 'pubcomp', 'pubcomp', 'pubrel', 'suback', 'unsuback'],
      );
      const valid: Record<string, number[]> = {
        puback: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
        pubrec: [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99],
        pubrel: [0x00, 0x92],
        pubcomp: [0x00, 0x92],
      };
      for (const p of got) {
        assert.ok(p.size <= 20, `${p.name} is ${p.size} bytes`);
        assert.ok(!p.props.has(Prop.REASON_STRING) && !p.props.has(Prop.USER_PROPERTY));
        const codes = valid[p.name];
        if (codes !== undefined) assert.ok(codes.includes(p.reasonCode), `${p.name} reason 0x${p.reasonCode.toString(16)}`);
      }
    },
  );

  test('request problem information 0: no reason string or user property on acknowledgements [MQTT-3.1.2-29]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t, { properties: [[Prop.REQUEST_PROBLEM_INFORMATION, 0]] });
    c.send(publish({ topic: 'rpi/none', payload: 'x', qos: 1, id: 1 })); // PUBACK 0x10
    c.send(publish({ topic: 'rpi/none', payload: Buffer.from([0xc3, 0x28]), qos: 1, id: 2, properties: [[Prop.PAYLOAD_FORMAT_INDICATOR, 1]] })); // 0x99
    c.send(P.pubrel(77)); // PUBCOMP 0x92
    c.send(P.pubrec(78)); // PUBREL 0x92
    c.send(P.subscribe(3, ['rpi/#/bad', 'rpi/ok'], { protocolVersion: 5 })); // 0x8F + granted
    c.send(P.unsubscribe(4, ['rpi/never'], { protocolVersion: 5 })); // 0x11
    const got = await c.sync();
    assert.deepEqual(
      got.map((p) => p.name),
      ['puback', 'puback', 'pubcomp', 'pubrel', 'suback', 'unsuback'],
    );
    for (const p of got) {
      assert.ok(!p.props.has(Prop.REASON_STRING) && !p.props.has(Prop.USER_PROPERTY), `${p.name} carries no problem information`);
    }
  });
});

suite('acknowledgement reason codes (v5)', { concurrency: 4 }, () => {
  test('PUBACK and PUBREC say 0x10 when no subscription matched, 0x00 otherwise [MQTT-3.4.2-1, MQTT-3.5.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    await subscriber(t, port, 'ack/yes');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'ack/no', payload: 'x', qos: 1, id: 1 }));
    assert.equal((await pub.expect('puback')).reasonCode, RC.NO_MATCHING_SUBSCRIBERS);
    pub.send(publish({ topic: 'ack/no', payload: 'x', qos: 2, id: 2 }));
    assert.equal((await pub.expect('pubrec')).reasonCode, RC.NO_MATCHING_SUBSCRIBERS);
    pub.send(P.pubrel(2));
    assert.equal((await pub.expect('pubcomp')).reasonCode, RC.SUCCESS);
    pub.send(publish({ topic: 'ack/yes', payload: 'x', qos: 1, id: 3 }));
    const ok = await pub.expect('puback');
    assert.equal(ok.packetId, 3);
    assert.equal(ok.reasonCode, RC.SUCCESS);
  });

  // An unknown PUBREL is answered with success, as Mosquitto does: after a restart the
  // release may already be stored while the client resends PUBREL (0x92 is allowed, not required).
  test('PUBREL with an unknown packet id gets PUBCOMP 0x00; PUBREC with an unknown id gets PUBREL 0x92 [MQTT-3.6.2-1, MQTT-3.7.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.pubrel(4242));
    const comp = await c.expect('pubcomp');
    assert.deepEqual([comp.packetId, comp.reasonCode], [4242, RC.SUCCESS]);
    c.send(P.pubrec(4343));
    const rel = await c.expect('pubrel');
    assert.deepEqual([rel.packetId, rel.reasonCode, rel.flags], [4343, RC.PACKET_IDENTIFIER_NOT_FOUND, 0x02]);
  });

  test('QoS 2 inbound is exactly once: a resent PUBLISH awaiting PUBREL is acknowledged, not routed again [MQTT-4.3.3-8, MQTT-4.3.3-10, MQTT-4.3.3-11, MQTT-4.3.3-12]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'eo/t');
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'eo/t', payload: 'once', qos: 2, id: 9 }));
    assert.equal((await pub.expect('pubrec')).packetId, 9);
    pub.send(publish({ topic: 'eo/t', payload: 'once', qos: 2, id: 9, dup: true }));
    assert.equal((await pub.expect('pubrec')).packetId, 9);
    pub.send(P.pubrel(9));
    assert.equal((await pub.expect('pubcomp')).packetId, 9);
    assert.equal((await sub.receive()).payload.toString(), 'once');
    assert.deepEqual(await sub.sync(), [], 'delivered once');
    // After PUBCOMP the same id starts a new message.
    pub.send(publish({ topic: 'eo/t', payload: 'twice', qos: 2, id: 9 }));
    await pub.expect('pubrec');
    pub.send(P.pubrel(9));
    await pub.expect('pubcomp');
    assert.equal((await sub.receive()).payload.toString(), 'twice');
  });

  test('a PUBACK or PUBREC with a reason code >= 0x80 completes the message: no PUBREL, no retransmission [MQTT-4.4.0-2, MQTT-4.3.3-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await subscriber(t, port, 'neg/#', { clientId: id, properties: props });
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'neg/1', payload: '1', qos: 1, id: 1 }));
    await pub.expect('puback');
    await pub.publish2({ topic: 'neg/2', payload: '2', id: 2 });
    const m1 = await a.expect('publish');
    const m2 = await a.expect('publish');
    a.send(ack(P.PT.PUBACK, m1.packetId, 0x80));
    a.send(ack(P.PT.PUBREC, m2.packetId, 0x83));
    assert.deepEqual(await a.sync(), [], 'no PUBREL after a failed PUBREC');
    a.close();
    await a.expectClose();
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    assert.deepEqual(await b.sync(), [], 'nothing retransmitted');
  });

  test('after PUBREL the broker resends PUBREL, not PUBLISH, on reconnect [MQTT-4.3.3-5, MQTT-4.3.3-6, MQTT-4.4.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const a = await subscriber(t, port, 'rel/t', { clientId: id, properties: props });
    const pub = await Client5.connected(port, t);
    await pub.publish2({ topic: 'rel/t', payload: 'x', id: 1 });
    const m = await a.expect('publish');
    assert.equal(m.dup, false, 'first delivery has DUP 0 [MQTT-4.3.3-2]');
    a.send(P.pubrec(m.packetId));
    assert.equal((await a.expect('pubrel')).packetId, m.packetId);
    a.close();
    await a.expectClose();
    const b = await Client5.connected(port, t, { clientId: id, clean: false, properties: props });
    const rel = await b.expect('pubrel');
    assert.equal(rel.packetId, m.packetId);
    b.send(P.pubcomp(m.packetId));
    assert.deepEqual(await b.sync(), []);
  });
});
