/**
 * CONNECT / CONNACK behaviour of MQTT 3.1.1 [MQTT-3.1], [MQTT-3.2].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { clientId, connectMqtt } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

test('unsupported protocol level gets CONNACK 0x01 then the connection is closed [MQTT-3.1.2-2]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  c.send(P.connect({ protocolVersion: 7, clientId: clientId() }));
  const connack = await c.expectPacket('connack');
  assert.equal(connack.returnCode, 0x01);
  assert.equal(connack.sessionPresent, false);
  await c.expectClose();
});

test('CONNECT with the reserved flag set is not accepted and the connection is closed [MQTT-3.1.2-3]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  c.send(P.connect({ clientId: clientId(), reservedFlag: true }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'connack' && p.returnCode === 0), 'no successful CONNACK before the close');
});

test('empty client id with clean session is accepted and the broker assigns an id [MQTT-3.1.3-6]', T, async (t) => {
  const { port } = await startBroker(t);
  const a = await RawClient.connect(port, t);
  const connack = await a.handshake({ clientId: '', clean: true });
  assert.equal(connack.returnCode, 0);
  assert.equal(connack.sessionPresent, false);
  // Two such clients coexist: each got its own generated id (no takeover).
  const b = await RawClient.connect(port, t);
  assert.equal((await b.handshake({ clientId: '', clean: true })).returnCode, 0);
  a.send(P.pingreq());
  await a.expectPacket('pingresp');
  assert.equal(a.closed, false);
});

test('empty client id without clean session gets CONNACK 0x02 and is closed [MQTT-3.1.3-8]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  c.send(P.connect({ clientId: '', clean: false }));
  const connack = await c.expectPacket('connack');
  assert.equal(connack.returnCode, 0x02);
  await c.expectClose();
});

test('CONNECT with username and password flags and fields is accepted [MQTT-3.1.2-19, MQTT-3.1.2-21]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  const connack = await c.handshake({ clientId: clientId(), username: 'user', password: Buffer.from([0, 1, 2, 255]) });
  assert.equal(connack.returnCode, 0);
  const u = await RawClient.connect(port, t);
  assert.equal((await u.handshake({ clientId: clientId(), username: 'only-user' })).returnCode, 0);
});

test('password flag without username flag is a protocol violation and closes the connection [MQTT-3.1.2-22]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  c.send(P.connect({ clientId: clientId(), password: 'secret' }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'connack' && p.returnCode === 0), 'no successful CONNACK before the close');
});

test('username flag set but username missing from the payload closes the connection [MQTT-3.1.2-18/19]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t);
  // Flags say "username" (0x80 | clean 0x02) but the payload ends after the client id.
  c.send(P.connect({ clientId: clientId(), flags: 0x82 }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'connack' && p.returnCode === 0), 'no successful CONNACK before the close');
});

test('MQTT.js client with username/password connects [MQTT-3.1.3-11]', T, async (t) => {
  const { url } = await startBroker(t);
  const client = await connectMqtt(t, url, { username: 'alice', password: 'pw' });
  assert.equal(client.connected, true);
});

test('CONNACK session present is 0 for clean session, 0 for a new persistent session and 1 when resuming it [MQTT-3.2.2-1, MQTT-3.2.2-2, MQTT-3.2.2-3]', T, async (t) => {
  const { port } = await startBroker(t);
  const id = clientId('sp');
  const clean = await RawClient.connect(port, t);
  assert.equal((await clean.handshake({ clientId: id, clean: true })).sessionPresent, false);
  clean.send(P.disconnect());
  await clean.expectClose();

  const first = await RawClient.connect(port, t);
  const c1 = await first.handshake({ clientId: id, clean: false });
  assert.equal(c1.returnCode, 0);
  assert.equal(c1.sessionPresent, false, 'no stored session yet');
  first.send(P.disconnect());
  await first.expectClose();

  const second = await RawClient.connect(port, t);
  const c2 = await second.handshake({ clientId: id, clean: false });
  assert.equal(c2.sessionPresent, true, 'persistent session resumed');
  second.send(P.disconnect());
  await second.expectClose();

  const third = await RawClient.connect(port, t);
  assert.equal((await third.handshake({ clientId: id, clean: true })).sessionPresent, false, 'clean session discards it');
});

test('a second CONNECT on the same connection closes it [MQTT-3.1.0-2]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.connect({ clientId: clientId() }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'connack'), 'no second CONNACK');
});

test('a first packet other than CONNECT closes the connection [MQTT-3.1.0-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const ping = await RawClient.connect(port, t);
  ping.send(P.pingreq());
  const before = await ping.expectClose();
  assert.deepEqual(before, [], 'no PINGRESP before CONNECT');

  const pub = await RawClient.connect(port, t);
  pub.send(P.publish({ topic: 'a/b', payload: 'x' }));
  assert.deepEqual(await pub.expectClose(), []);
});

test('a client connecting with an id already connected takes over: the older connection is closed [MQTT-3.1.4-2]', T, async (t) => {
  const { port } = await startBroker(t);
  const id = clientId('takeover');
  const older = await RawClient.connected(port, t, { clientId: id });
  const newer = await RawClient.connected(port, t, { clientId: id });
  await older.expectClose();
  newer.send(P.pingreq());
  await newer.expectPacket('pingresp');
});

test('an MQTT 5 CONNECT with properties is accepted (CONNACK reason code 0)', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connect(port, t, { protocolVersion: 5 });
  const connack = await c.handshake({ protocolVersion: 5, clientId: clientId(), properties: [[0x11, 0], [0x21, 10]] });
  assert.equal(connack.returnCode, 0);
});
