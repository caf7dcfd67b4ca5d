/**
 * Server DISCONNECT and error handling [MQTT 5.0 §3.14, §4.13]: the reason
 * codes the broker uses, and that it closes after sending one.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import { TERN_ONLY, startBroker } from '../helpers/broker.js';
import { Client5, DISCONNECT_CODES, P, Prop, RC, publish } from './helpers/v5.js';

const T = { timeout: 10_000 };

suite('server DISCONNECT (v5)', { concurrency: 4 }, () => {
  test('broker.close() sends DISCONNECT 0x8B (server shutting down) to v5 clients and closes [MQTT 5.0 §3.14.2.1, MQTT-3.14.4-2]', { ...T, skip: TERN_ONLY }, async (t) => {
    const { port, broker } = await startBroker(t);
    const a = await Client5.connected(port, t);
    const b = await Client5.connected(port, t);
    await broker!.close();
    for (const c of [a, b]) {
      const d = await c.expectDisconnect();
      assert.equal(d.reasonCode, RC.SERVER_SHUTTING_DOWN);
    }
  });

  test('after a DISCONNECT the server sends nothing more and closes the connection [MQTT-3.14.4-1, MQTT-3.14.4-2, MQTT-4.13.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    await c.sub(1, [{ filter: 'after/#', qos: 0 }]);
    // A protocol error, then more traffic the server must ignore.
    c.send(P.packet(P.PT.PUBREL, 0, P.u16(1)), publish({ topic: 'after/t', payload: 'x' }), P.pingreq());
    const rest = await c.expectClose();
    const i = rest.findIndex((p) => p.name === 'disconnect');
    assert.ok(i >= 0, 'a DISCONNECT was sent');
    assert.equal(rest.length, i + 1, `nothing after the DISCONNECT: ${rest.map((p) => p.name).join(',')}`);
    assert.equal(rest[i]!.reasonCode, RC.MALFORMED_PACKET, 'PUBREL with flags 0000 is malformed [MQTT-3.6.1-1]');
  });

  for (const [what, bytes, code] of [
    ['PUBREL with fixed-header flags 0000 [MQTT-3.6.1-1]', P.packet(P.PT.PUBREL, 0, P.u16(1)), RC.MALFORMED_PACKET],
    ['UNSUBSCRIBE with fixed-header flags 0000 [MQTT-3.10.1-1]', P.unsubscribe(1, ['a'], { protocolVersion: 5, flags: 0 }), RC.MALFORMED_PACKET],
    ['PINGREQ with fixed-header flags 0001 [MQTT-2.1.3-1]', Buffer.from([0xc1, 0x00]), RC.MALFORMED_PACKET],
    ['DISCONNECT with fixed-header flags 0001 [MQTT-3.14.1-1]', Buffer.from([0xe1, 0x00]), RC.MALFORMED_PACKET],
    ['a property block longer than the packet [MQTT 5.0 §2.2.2]', P.packet(P.PT.PUBLISH, 0, Buffer.concat([P.str('a'), Buffer.from([0x20, 0x01])])), RC.MALFORMED_PACKET],
    ['a QoS 0 PUBLISH carrying a packet id field is read as a bad property block [MQTT-2.2.1-2]', P.packet(P.PT.PUBLISH, 0, Buffer.concat([P.str('a'), P.u16(0x7f7f)])), RC.MALFORMED_PACKET],
    ['a session expiry interval in PUBLISH (property not allowed there) [MQTT 5.0 §2.2.2.2]', publish({ topic: 'a', payload: 'x', properties: [[Prop.SESSION_EXPIRY_INTERVAL, 1]] }), RC.PROTOCOL_ERROR],
    ['a SUBSCRIBE with packet id 0 [MQTT-2.2.1-3]', P.packet(P.PT.SUBSCRIBE, 2, Buffer.concat([P.u16(0), P.properties(), P.str('a'), Buffer.from([0])])), RC.PROTOCOL_ERROR],
    ['a QoS 1 PUBLISH with packet id 0 [MQTT-2.2.1-3]', publish({ topic: 'a', payload: 'x', qos: 1, id: 0 }), RC.PROTOCOL_ERROR],
    ['a CONNACK from a client [MQTT 5.0 §4.13]', P.packet(P.PT.CONNACK, 0, Buffer.from([0, 0, 0])), RC.PROTOCOL_ERROR],
    ['a response topic with invalid UTF-8 [MQTT-3.3.2-13]', publish({ topic: 'a', payload: 'x', properties: [[Prop.RESPONSE_TOPIC, Buffer.from([0x72, 0xc3, 0x28])]] }), RC.MALFORMED_PACKET],
    ['a content type with invalid UTF-8 [MQTT-3.3.2-19]', publish({ topic: 'a', payload: 'x', properties: [[Prop.CONTENT_TYPE, Buffer.from([0xc3, 0x28])]] }), RC.MALFORMED_PACKET],
    ['a SUBSCRIBE topic filter with invalid UTF-8 [MQTT-3.8.3-1]', P.subscribe(1, [{ filter: Buffer.from([0x61, 0xc3, 0x28]) }], { protocolVersion: 5 }), RC.MALFORMED_PACKET],
    ['an UNSUBSCRIBE topic filter with invalid UTF-8 [MQTT-3.10.3-1]', P.packet(P.PT.UNSUBSCRIBE, 2, Buffer.concat([P.u16(1), P.properties(), P.str(Buffer.from([0x61, 0xc3, 0x28]))])), RC.MALFORMED_PACKET],
    ['an UNSUBSCRIBE with no topic filter [MQTT-3.10.3-2]', P.packet(P.PT.UNSUBSCRIBE, 2, Buffer.concat([P.u16(1), P.properties()])), RC.PROTOCOL_ERROR],
  ] as const) {
    test(`${what}: DISCONNECT with reason 0x${code.toString(16)}, then close [MQTT-4.13.1-1, MQTT-3.14.2-1, MQTT-3.14.2-2]`, T, async (t) => {
      const { port } = await startBroker(t);
      const c = await Client5.connected(port, t);
      c.send(bytes);
      const d = await c.expectDisconnect();
      assert.ok(DISCONNECT_CODES.has(d.reasonCode), `a DISCONNECT reason code [MQTT-3.14.2-1]: 0x${d.reasonCode.toString(16)}`);
      assert.equal(d.reasonCode, code);
      assert.equal(d.props.has(Prop.SESSION_EXPIRY_INTERVAL), false, '[MQTT-3.14.2-2]');
    });
  }

  test('a protocol-error DISCONNECT carries a Reason String when the client allows problem information, and no User Property [MQTT 5.0 §3.14.2.2.3, MQTT-3.14.2-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.packet(P.PT.CONNACK, 0, Buffer.from([0, 0, 0])));
    const d = await c.expectDisconnect();
    const reason = d.props.str(Prop.REASON_STRING);
    assert.equal(d.props.has(Prop.USER_PROPERTY), false);
    assert.ok(reason !== undefined && reason.length > 0);
  });

  test('the DISCONNECT for a protocol error still goes out when the client is silent afterwards, within 1 s [MQTT-4.13.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.packet(P.PT.CONNACK, 0, Buffer.from([0, 0, 0])));
    const start = Date.now();
    await c.expectDisconnect(1500);
    assert.ok(Date.now() - start < 1500);
  });
});
