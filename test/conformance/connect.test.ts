/**
 * MQTT 5.0 CONNECT / CONNACK [MQTT 5.0 §3.1, §3.2], sessions [§4.1] and
 * session takeover, in raw packets. Spec ids in test names are MQTT 5.0 ids.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite, test } from 'node:test';
import { promisify } from 'node:util';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { Client5, P, Prop, RC, cid, connect, elapse, publish, type Packet5 } from './helpers/v5.js';

const T = { timeout: 10_000 };
const execFileAsync = promisify(execFile);
/** Tests that configure Tern in ways the mosquitto target cannot mirror. */
const TERN = isMosquitto ? 'Tern configuration with no mosquitto equivalent' : false;

/** The connection must close without a successful CONNACK and without any DISCONNECT [MQTT-3.14.0-1]. */
async function expectRefused(c: Client5): Promise<Packet5 | undefined> {
  const rest = await c.expectClose();
  assert.ok(!rest.some((p) => p.name === 'disconnect'), 'no DISCONNECT before a successful CONNACK [MQTT-3.14.0-1]');
  const connack = rest.find((p) => p.name === 'connack');
  if (connack !== undefined) {
    assert.ok(connack.reasonCode >= 0x80, `a refusing CONNACK has a reason code >= 0x80, got 0x${connack.reasonCode.toString(16)}`);
    assert.equal(connack.sessionPresent, false, 'session present is 0 on a refusing CONNACK [MQTT-3.2.2-6]');
  }
  return connack;
}

suite('CONNECT and CONNACK (v5)', { concurrency: 4 }, () => {
  test('a v5 CONNECT gets CONNACK 0x00 first, with acknowledge flag bits 7-1 zero [MQTT-3.1.4-5, MQTT-3.2.2-1, MQTT-3.2.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.open(port, t);
    // Pipelined: the SUBSCRIBE must be answered after the CONNACK, never before.
    c.send(connect(), P.subscribe(1, ['a/b'], { protocolVersion: 5 }));
    const first = await c.next();
    assert.equal(first.name, 'connack');
    assert.equal(first.reasonCode, RC.SUCCESS);
    assert.equal(first.ackFlags & 0xfe, 0);
    assert.equal((await c.expect('suback')).packetId, 1);
  });

  test('the server sends only one CONNACK on a connection [MQTT-3.2.0-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    const before = await c.sync();
    assert.ok(!before.some((p) => p.name === 'connack'), 'no second CONNACK');
  });

  test('a second CONNECT is a protocol error: DISCONNECT 0x82 and close [MQTT-3.1.0-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(connect());
    assert.equal((await c.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('a first packet other than CONNECT closes the connection with no CONNACK or DISCONNECT [MQTT-3.1.0-1, MQTT-3.14.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.open(port, t);
    c.send(P.pingreq());
    const rest = await c.expectClose();
    assert.deepEqual(
      rest.map((p) => p.name),
      [],
    );
  });

  for (const [name, bytes] of [
    ['reserved connect flag set [MQTT-3.1.2-3]', connect({ reservedFlag: true })],
    ['will flag 0 with will QoS 1 [MQTT-3.1.2-11]', connect({ flags: 0x02 | 0x08 })],
    ['will flag 0 with will retain 1 [MQTT-3.1.2-13]', connect({ flags: 0x02 | 0x20 })],
    ['will QoS 3 [MQTT-3.1.2-12]', connect({ flags: 0x02 | 0x04 | 0x18, will: { topic: 'w', payload: 'x' } })],
    ['password flag set without a password [MQTT-3.1.2-19]', connect({ flags: 0x02 | 0x40 })],
    ['user name flag set without a user name [MQTT-3.1.2-17]', connect({ flags: 0x02 | 0x80 })],
    ['session expiry interval given twice [MQTT 5.0 §3.1.2.11.2]', connect({ properties: [[Prop.SESSION_EXPIRY_INTERVAL, 1], [Prop.SESSION_EXPIRY_INTERVAL, 2]] })],
    ['receive maximum 0 [MQTT 5.0 §3.1.2.11.3]', connect({ properties: [[Prop.RECEIVE_MAXIMUM, 0]] })],
    ['maximum packet size 0 [MQTT 5.0 §3.1.2.11.4]', connect({ properties: [[Prop.MAXIMUM_PACKET_SIZE, 0]] })],
    ['request problem information 2 [MQTT 5.0 §3.1.2.11.7]', connect({ properties: [[Prop.REQUEST_PROBLEM_INFORMATION, 2]] })],
    ['a property not allowed in CONNECT (topic alias) [MQTT 5.0 §2.2.2.2]', connect({ properties: [[Prop.TOPIC_ALIAS, 1]] })],
    ['will flag set but no will properties, topic or payload [MQTT-3.1.2-9, MQTT-3.1.3-1]', connect({ flags: 0x02 | 0x04 })],
    ['no client id field at all [MQTT-3.1.3-3]', P.packet(P.PT.CONNECT, 0, Buffer.concat([P.str('MQTT'), Buffer.from([5, 0x02]), P.u16(30), P.properties()]))],
    ['user name flag 0 with a user name present [MQTT-3.1.2-16]', connect({ flags: 0x02, username: 'u' })],
    ['password flag 0 with a password present [MQTT-3.1.2-18]', connect({ flags: 0x02 | 0x80, username: 'u', password: 'p' })],
    ['a user name with invalid UTF-8 [MQTT-3.1.3-12, MQTT-1.5.4-1]', connect({ username: Buffer.from([0x75, 0xc3, 0x28]) })],
    [
      'a will topic with invalid UTF-8 [MQTT-3.1.3-11, MQTT-1.5.4-1]',
      P.packet(
        P.PT.CONNECT,
        0,
        Buffer.concat([P.str('MQTT'), Buffer.from([5, 0x06]), P.u16(30), P.properties(), P.str(cid()), P.properties(), P.str(Buffer.from([0x77, 0xc3, 0x28])), P.str('x')]),
      ),
    ],
  ] as const) {
    test(`a malformed CONNECT (${name}) is refused and the connection closed [MQTT-3.1.4-1]`, T, async (t) => {
      const { port } = await startBroker(t);
      const c = await Client5.open(port, t);
      c.send(bytes);
      await expectRefused(c);
    });
  }

  test('a client id with invalid UTF-8 bytes is refused [MQTT-3.1.3-4, MQTT-1.5.4-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.open(port, t);
    // Raw bytes in the client id field: 'a', 0xC3 0x28 (an invalid 2-byte sequence).
    const body = Buffer.concat([P.str('MQTT'), Buffer.from([5, 0x02]), P.u16(30), P.properties(), P.str(Buffer.from([0x61, 0xc3, 0x28]))]);
    c.send(P.packet(P.PT.CONNECT, 0, body));
    await expectRefused(c);
  });

  test(
    'an unknown protocol name at level 5 is refused, at most with the v5 CONNACK 0x84, and the connection closed [MQTT-3.1.2-1, MQTT-3.2.2-8]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const c = await Client5.open(port, t);
      c.send(connect({ protocolName: 'MQTX' }));
      const connack = await expectRefused(c);
      if (connack !== undefined) assert.equal(connack.reasonCode, RC.UNSUPPORTED_PROTOCOL_VERSION);
    },
  );

  test('protocol version 6 is refused (CONNACK 0x84 or 3.1.1-style 0x01) and the connection closed [MQTT-3.1.2-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.open(port, t);
    c.send(P.connect({ protocolVersion: 6, clientId: cid() }));
    const rest = await c.expectClose();
    const connack = rest.find((p) => p.name === 'connack');
    if (connack !== undefined) assert.ok([0x84, 0x01].includes(connack.reasonCode), `reason 0x${connack.reasonCode.toString(16)}`);
  });

  test('client ids of 1 to 23 alphanumeric characters are accepted [MQTT-3.1.3-5]', T, async (t) => {
    const { port } = await startBroker(t);
    for (const id of ['a', '0123456789abcdefghijKLM']) {
      const { connack } = await Client5.handshake(port, t, { clientId: id });
      assert.equal(connack.reasonCode, RC.SUCCESS, id);
    }
  });

  test('after refusing a CONNECT the server processes none of the data that followed it [MQTT-3.1.4-6]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { allowZeroLengthClientId: false } });
    const c = await Client5.open(port, t);
    c.send(connect({ clientId: '' }), publish({ topic: 'refused/t', payload: 'must not exist', qos: 1, id: 1, retain: true }));
    await expectRefused(c);
    const probe = await Client5.connected(port, t);
    await probe.sub(1, [{ filter: 'refused/t', qos: 1 }]);
    assert.deepEqual(await probe.sync(), [], 'the pipelined retained PUBLISH was not processed');
  });

  test('a refusing CONNACK fits the client Maximum Packet Size: no Reason String or User Property pushes it over [MQTT-3.2.2-19, MQTT-3.2.2-20]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { allowZeroLengthClientId: false } });
    const c = await Client5.open(port, t);
    c.send(connect({ clientId: '', properties: [[Prop.MAXIMUM_PACKET_SIZE, 16]] }));
    const connack = await expectRefused(c);
    assert.ok(connack !== undefined && connack.size <= 16, `CONNACK of ${connack?.size} bytes`);
  });

  test(
    'a failed password check is refused with CONNACK 0x86 and the connection closed [MQTT-3.1.4-2]',
    { ...T, skip: TERN },
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'tern-pw-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const file = join(dir, 'passwd');
      await execFileAsync('mosquitto_passwd', ['-c', '-b', file, 'alice', 's3cret']);
      const { port } = await startBroker(t, { auth: { passwordFile: file, allowAnonymous: false } });
      await Client5.connected(port, t, { username: 'alice', password: 's3cret' });
      for (const o of [{ username: 'alice', password: 'wrong' }, { username: 'mallory', password: 's3cret' }, {}]) {
        const c = await Client5.open(port, t);
        c.send(connect(o));
        const connack = await expectRefused(c);
        assert.ok(connack !== undefined && (connack.reasonCode === RC.BAD_USER_NAME_OR_PASSWORD || connack.reasonCode === RC.NOT_AUTHORIZED), JSON.stringify(o));
      }
    },
  );

  test('CONNECT user properties are accepted [MQTT 5.0 §3.1.2.11.8]', T, async (t) => {
    const { port } = await startBroker(t);
    await Client5.connected(port, t, {
      properties: [
        [Prop.USER_PROPERTY, ['k', 'v']],
        [Prop.USER_PROPERTY, ['k', 'v']],
      ],
    });
  });
});

suite('clean start, session expiry and session present (v5)', { concurrency: 4 }, () => {
  test('session expiry 0 (absent): the session ends when the connection closes [MQTT-3.1.2-23, MQTT-4.1.0-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id });
    await a.sub(1, [{ filter: 'se0/t', qos: 1 }]);
    a.close();
    await a.expectClose();
    const { connack } = await Client5.handshake(port, t, { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, false);
  });

  test('clean start 0 resumes the session of its client id, kept by session expiry > 0, queue included [MQTT-3.1.2-5, MQTT-3.2.2-3, MQTT-3.1.2-23, MQTT-3.1.3-2, MQTT-3.1.4-4, MQTT-4.5.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    await a.sub(1, [{ filter: 'se/t', qos: 1 }]);
    a.send(P.disconnect(0));
    await a.expectClose();
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'se/t', payload: 'queued', qos: 1, id: 1 }));
    await pub.expect('puback');
    const { client: b, connack } = await Client5.handshake(port, t, { clientId: id, clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    assert.equal(connack.sessionPresent, true);
    const m = await b.receive();
    assert.equal(m.payload.toString(), 'queued');
  });

  test('clean start 0 without a session starts a new one with session present 0 [MQTT-3.1.2-6, MQTT-3.2.2-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const { connack } = await Client5.handshake(port, t, { clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 10]] });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.sessionPresent, false);
  });

  test('clean start 1 discards an existing session: session present 0 and no old subscriptions [MQTT-3.1.2-4, MQTT-3.2.2-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    await a.sub(1, [{ filter: 'cs/t', qos: 1 }]);
    a.close();
    await a.expectClose();
    const { client: b, connack } = await Client5.handshake(port, t, { clientId: id, clean: true, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    assert.equal(connack.sessionPresent, false);
    b.send(publish({ topic: 'cs/t', payload: 'x', qos: 1, id: 5 }));
    const ack = await b.expect('puback');
    assert.equal(ack.reasonCode, RC.NO_MATCHING_SUBSCRIBERS, 'the old subscription is gone');
  });

  test('session expiry n: the session and its queue live n seconds after the connection, then are discarded [MQTT-4.1.0-2, MQTT-3.1.2-23]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 1]] as const;
    const a = await Client5.connected(port, t, { clientId: id, properties: props });
    await a.sub(1, [{ filter: 'sen/t', qos: 1 }]);
    a.close();
    await a.expectClose();
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'sen/t', payload: 'within', qos: 1, id: 1 }));
    await pub.expect('puback');
    await elapse(500);
    // Within the interval: session and queued message are there.
    const { client: b, connack: c1 } = await Client5.handshake(port, t, { clientId: id, clean: false, properties: props });
    assert.equal(c1.sessionPresent, true, 'present 0.5 s into a 1 s expiry');
    assert.equal((await b.receive()).payload.toString(), 'within');
    b.close();
    await b.expectClose();
    pub.send(publish({ topic: 'sen/t', payload: 'after', qos: 1, id: 2 }));
    await pub.expect('puback');
    await elapse(1700);
    // Past the interval: the session and its queue are gone.
    const { client: c, connack: c2 } = await Client5.handshake(port, t, { clientId: id, clean: false, properties: props });
    assert.equal(c2.sessionPresent, false, 'gone 1.7 s into a 1 s expiry');
    await c.expectNoPacket(300);
  });

  test('session expiry 0xFFFFFFFF: the session does not expire [MQTT 5.0 §3.1.2.11.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 0xffffffff]] });
    a.close();
    await a.expectClose();
    await elapse(1300); // longer than the 1 s expiry above
    const { connack } = await Client5.handshake(port, t, { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, true);
  });

  test('DISCONNECT can set session expiry to 0, ending the session at once [MQTT 5.0 §3.14.2.2.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 60]] });
    a.send(P.packet(P.PT.DISCONNECT, 0, Buffer.concat([Buffer.from([0]), P.properties([[Prop.SESSION_EXPIRY_INTERVAL, 0]])])));
    await a.expectClose();
    const { connack } = await Client5.handshake(port, t, { clientId: id, clean: false });
    assert.equal(connack.sessionPresent, false);
  });

  test('DISCONNECT raising a session expiry of 0 is a protocol error: DISCONNECT 0x82 [MQTT 5.0 §3.14.2.2.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await Client5.connected(port, t);
    a.send(P.packet(P.PT.DISCONNECT, 0, Buffer.concat([Buffer.from([0]), P.properties([[Prop.SESSION_EXPIRY_INTERVAL, 30]])])));
    assert.equal((await a.expectDisconnect()).reasonCode, RC.PROTOCOL_ERROR);
  });

  test('the broker caps session expiry at mqtt.maxSessionExpiry and returns the value it uses [MQTT 5.0 §3.2.2.3.2]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { maxSessionExpiry: 1 } });
    const id = cid();
    const { client: a, connack } = await Client5.handshake(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 3600]] });
    assert.equal(connack.props.num(Prop.SESSION_EXPIRY_INTERVAL), 1);
    a.close();
    await a.expectClose();
    await elapse(1600);
    const { connack: again } = await Client5.handshake(port, t, { clientId: id, clean: false });
    assert.equal(again.sessionPresent, false, 'expired after the capped 1 s');
  });

  test('taking over a connected client id: the old connection gets DISCONNECT 0x8E, with no session expiry, and is closed; the session lives on [MQTT-3.1.4-3, MQTT-3.14.2-2, MQTT-4.1.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = cid();
    const a = await Client5.connected(port, t, { clientId: id, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    await a.sub(1, [{ filter: 'to/t', qos: 1 }]);
    const { connack } = await Client5.handshake(port, t, { clientId: id, clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    const d = await a.expectDisconnect();
    assert.equal(d.reasonCode, RC.SESSION_TAKEN_OVER);
    assert.ok(!d.props.has(Prop.SESSION_EXPIRY_INTERVAL), 'a server DISCONNECT never carries a session expiry interval');
    assert.equal(connack.sessionPresent, true, 'clean start 0 takes the session over');
  });
});

suite('assigned client identifier, keep alive, capabilities (v5)', { concurrency: 4 }, () => {
  test('a zero-length client id gets a unique Assigned Client Identifier, used as the client id [MQTT-3.1.3-6, MQTT-3.1.3-7, MQTT-3.2.2-16]', T, async (t) => {
    const { port } = await startBroker(t);
    const { client: a, connack: c1 } = await Client5.handshake(port, t, { clientId: '', properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    const { connack: c2 } = await Client5.handshake(port, t, { clientId: '' });
    const id1 = c1.props.str(Prop.ASSIGNED_CLIENT_IDENTIFIER);
    const id2 = c2.props.str(Prop.ASSIGNED_CLIENT_IDENTIFIER);
    assert.ok(id1 !== undefined && id1.length > 0);
    assert.ok(id2 !== undefined && id2.length > 0);
    assert.notEqual(id1, id2);
    await a.sub(1, [{ filter: 'aci/t', qos: 1 }]);
    a.close();
    await a.expectClose();
    const { connack } = await Client5.handshake(port, t, { clientId: id1, clean: false });
    assert.equal(connack.sessionPresent, true, 'the session was created under the assigned id');
  });

  test('a client that supplies its id gets no Assigned Client Identifier', T, async (t) => {
    const { port } = await startBroker(t);
    const { connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.has(Prop.ASSIGNED_CLIENT_IDENTIFIER), false);
  });

  test('a refused zero-length client id gets CONNACK 0x85 with session present 0, and the connection closed [MQTT-3.1.3-8, MQTT-3.2.2-6, MQTT-3.2.2-7, MQTT-3.2.2-8]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { allowZeroLengthClientId: false } });
    const c = await Client5.open(port, t);
    c.send(connect({ clientId: '' }));
    const connack = await expectRefused(c);
    assert.equal(connack?.reasonCode, RC.CLIENT_IDENTIFIER_NOT_VALID);
  });

  test('without limits.maxKeepalive no Server Keep Alive is sent and the client keep alive is enforced: DISCONNECT 0x8D after 1.5 x [MQTT-3.2.2-22, MQTT-3.1.2-22]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const { client, connack } = await Client5.handshake(port, t, { keepalive: 1 });
    assert.equal(connack.props.has(Prop.SERVER_KEEP_ALIVE), false);
    const start = Date.now();
    const d = await client.expectDisconnect(isMosquitto ? 8000 : 4000);
    const after = Date.now() - start;
    assert.equal(d.reasonCode, RC.KEEP_ALIVE_TIMEOUT);
    assert.ok(after >= 1400, `not before 1.5 x keep alive (closed after ${after} ms)`);
  });

  test('limits.maxKeepalive below the requested keep alive: CONNACK Server Keep Alive, and the broker enforces it [MQTT 5.0 §3.2.2.3.14, MQTT-3.1.2-22]', { timeout: 15_000, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { limits: { maxKeepalive: 1 } });
    const { client, connack } = await Client5.handshake(port, t, { keepalive: 60 });
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.props.num(Prop.SERVER_KEEP_ALIVE), 1);
    const d = await client.expectDisconnect(4000);
    assert.equal(d.reasonCode, RC.KEEP_ALIVE_TIMEOUT);
  });

  test('keep alive 0 with limits.maxKeepalive set: Server Keep Alive is the maximum', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { limits: { maxKeepalive: 30 } });
    const { connack } = await Client5.handshake(port, t, { keepalive: 0 });
    assert.equal(connack.props.num(Prop.SERVER_KEEP_ALIVE), 30);
  });

  test('a PINGREQ keeps the connection alive past 1.5 x keep alive [MQTT-3.12.4-1, MQTT-3.1.2-22]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t, { keepalive: 1 });
    for (let i = 0; i < 4; i++) {
      await elapse(600);
      await c.sync();
    }
    assert.equal(c.closed, false);
  });

  test('default CONNACK: capabilities not restricted, no Authentication Method, no Response Information [MQTT 5.0 §3.2.2.3, MQTT-4.12.0-6, MQTT-3.1.2-28]', T, async (t) => {
    const { port } = await startBroker(t);
    const { connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.has(Prop.MAXIMUM_QOS), false);
    for (const id of [Prop.RETAIN_AVAILABLE, Prop.WILDCARD_SUBSCRIPTION_AVAILABLE, Prop.SUBSCRIPTION_IDENTIFIER_AVAILABLE, Prop.SHARED_SUBSCRIPTION_AVAILABLE]) {
      const v = connack.props.num(id);
      assert.ok(v === undefined || v === 1, `property 0x${id.toString(16)} = ${v}`);
    }
    assert.equal(connack.props.has(Prop.AUTHENTICATION_METHOD), false, 'no Authentication Method when the client sent none [MQTT-4.12.0-6]');
    assert.equal(connack.props.has(Prop.RESPONSE_INFORMATION), false, 'no Response Information unless requested [MQTT-3.1.2-28]');
  });

  test('capabilities are reported from config: Maximum QoS, Retain/Wildcard/Subscription Identifier/Shared Available [MQTT-3.2.2-9]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, {
      mqtt: { maxQos: 1, retainAvailable: false, wildcardSubscriptions: false, subscriptionIdentifiers: false, sharedSubscriptions: false },
    });
    const { connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.num(Prop.MAXIMUM_QOS), 1);
    assert.equal(connack.props.num(Prop.RETAIN_AVAILABLE), 0);
    assert.equal(connack.props.num(Prop.WILDCARD_SUBSCRIPTION_AVAILABLE), 0);
    assert.equal(connack.props.num(Prop.SUBSCRIPTION_IDENTIFIER_AVAILABLE), 0);
    assert.equal(connack.props.num(Prop.SHARED_SUBSCRIPTION_AVAILABLE), 0);
  });

  test('receive maximum and maximum packet size are announced from config [MQTT 5.0 §3.2.2.3.3, §3.2.2.3.6]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { receiveMaximum: 7 }, limits: { maxPacketSize: 4096 } });
    const { connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.num(Prop.RECEIVE_MAXIMUM), 7);
    assert.equal(connack.props.num(Prop.MAXIMUM_PACKET_SIZE), 4096);
  });

  test('topic alias maximum is announced from config, and 0 means none [MQTT 5.0 §3.2.2.3.8]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { topicAliasMaximum: 3 } });
    const { connack } = await Client5.handshake(port, t);
    assert.equal(connack.props.num(Prop.TOPIC_ALIAS_MAXIMUM), 3);
    const b = await startBroker(t, { mqtt: { topicAliasMaximum: 0 } });
    const { connack: none } = await Client5.handshake(b.port, t);
    assert.ok((none.props.num(Prop.TOPIC_ALIAS_MAXIMUM) ?? 0) === 0);
  });

  test('a packet larger than the announced Maximum Packet Size gets DISCONNECT 0x95 [MQTT 5.0 §3.2.2.3.6, MQTT-3.2.2-15]', T, async (t) => {
    const { port } = await startBroker(t, { limits: { maxPacketSize: 128 } });
    const c = await Client5.connected(port, t);
    c.send(publish({ topic: 'big', payload: Buffer.alloc(300, 0x61), qos: 1, id: 1 }));
    const rest = await c.expectClose();
    assert.ok(!rest.some((p) => p.name === 'puback'), 'the oversized PUBLISH is not acknowledged');
    const d = rest.find((p) => p.name === 'disconnect');
    if (!isMosquitto || d !== undefined) assert.equal(d?.reasonCode, RC.PACKET_TOO_LARGE);
  });

  test('maxQos 0: SUBSCRIBE at QoS 2 is still accepted, granted QoS 0 [MQTT-3.2.2-10, MQTT-3.8.4-7]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { maxQos: 0 } });
    const c = await Client5.connected(port, t);
    assert.deepEqual(await c.sub(1, [{ filter: 'mq/t', qos: 2 }]), [0]);
  });

  test('a PUBLISH above Maximum QoS gets DISCONNECT 0x9B [MQTT-3.2.2-11, MQTT 5.0 §3.2.2.3.4]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { maxQos: 1 } });
    const c = await Client5.connected(port, t);
    c.send(publish({ topic: 'mq/t', payload: 'x', qos: 2, id: 1 }));
    assert.equal((await c.expectDisconnect()).reasonCode, RC.QOS_NOT_SUPPORTED);
  });

  test(
    'a Will QoS above Maximum QoS is refused with CONNACK 0x9B and the connection closed [MQTT-3.2.2-12]',
    T,
    async (t) => {
    const { port } = await startBroker(t, { mqtt: { maxQos: 1 } });
    const c = await Client5.open(port, t);
    c.send(connect({ will: { topic: 'w/t', payload: 'x', qos: 2 } }));
    const connack = await expectRefused(c);
    assert.equal(connack?.reasonCode, RC.QOS_NOT_SUPPORTED);
  });

  test('retain unavailable: a PUBLISH with RETAIN 1 gets DISCONNECT 0x9A [MQTT-3.2.2-14, MQTT 5.0 §3.2.2.3.5]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { retainAvailable: false } });
    const c = await Client5.connected(port, t);
    c.send(publish({ topic: 'r/t', payload: 'x', retain: true }));
    assert.equal((await c.expectDisconnect()).reasonCode, RC.RETAIN_NOT_SUPPORTED);
  });

  test(
    'retain unavailable: a Will Retain 1 is refused with CONNACK 0x9A and the connection closed [MQTT-3.2.2-13]',
    T,
    async (t) => {
    const { port } = await startBroker(t, { mqtt: { retainAvailable: false } });
    const c = await Client5.open(port, t);
    c.send(connect({ will: { topic: 'w/t', payload: 'x', retain: true } }));
    const connack = await expectRefused(c);
    assert.equal(connack?.reasonCode, RC.RETAIN_NOT_SUPPORTED);
  });

  test('request response information 0: no Response Information [MQTT-3.1.2-28]', T, async (t) => {
    const { port } = await startBroker(t);
    const { connack } = await Client5.handshake(port, t, { properties: [[Prop.REQUEST_RESPONSE_INFORMATION, 0]] });
    assert.equal(connack.props.has(Prop.RESPONSE_INFORMATION), false);
  });

  test(
    'request response information 1: CONNACK carries Response Information, a topic prefix the client may use [MQTT 5.0 §3.2.2.3.15]',
    T,
    async (t) => {
      const { port } = await startBroker(t, { mqtt: { responseInformation: 'responses/%c' } });
      const { client, connack } = await Client5.handshake(port, t, { properties: [[Prop.REQUEST_RESPONSE_INFORMATION, 1]] });
      const info = connack.props.str(Prop.RESPONSE_INFORMATION);
      assert.ok(info !== undefined && info.length > 0, 'Response Information present');
      // The prefix must be usable: subscribe under it and receive what is published there.
      await client.sub(1, [{ filter: `${info}/#`, qos: 1 }]);
      client.send(publish({ topic: `${info}/reply`, payload: 'r', qos: 1, id: 2 }));
      const m = await client.expect('publish');
      assert.equal(m.topic, `${info}/reply`);
    },
  );

  test(
    'an unsupported Authentication Method is refused with CONNACK 0x8C and the connection closed [MQTT-4.12.0-1]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const c = await Client5.open(port, t);
      c.send(connect({ properties: [[Prop.AUTHENTICATION_METHOD, 'SCRAM-SHA-1'], [Prop.AUTHENTICATION_DATA, Buffer.from('n,,n=user,r=abc')]] }));
      const connack = await expectRefused(c);
      assert.equal(connack?.reasonCode, RC.BAD_AUTHENTICATION_METHOD);
    },
  );

  test('an AUTH packet from a client that sent no Authentication Method is a protocol error: DISCONNECT 0x82 [MQTT-4.12.0-7, MQTT 5.0 §4.12]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.packet(P.PT.AUTH, 0, Buffer.concat([Buffer.from([0x19]), P.properties([[Prop.AUTHENTICATION_METHOD, 'X']])])));
    const d = await c.expectDisconnect();
    assert.equal(d.reasonCode, RC.PROTOCOL_ERROR);
  });

  test('an AUTH packet with reserved fixed-header flags set is malformed: the connection closes [MQTT-3.15.1-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await Client5.connected(port, t);
    c.send(P.packet(P.PT.AUTH, 0x01, Buffer.from([0x18, 0x00])));
    const d = await c.expectDisconnect();
    assert.ok(d.reasonCode === RC.MALFORMED_PACKET || d.reasonCode === RC.PROTOCOL_ERROR, `reason 0x${d.reasonCode.toString(16)}`);
  });

  test('server reference: a configured redirect refuses CONNECT with 0x9C and a Server Reference [MQTT 5.0 §4.11]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { serverReference: 'other.example:1883' } });
    const c = await Client5.open(port, t);
    c.send(connect({}));
    const connack = await expectRefused(c);
    assert.equal(connack?.reasonCode, RC.USE_ANOTHER_SERVER);
    assert.equal(connack?.props.str(Prop.SERVER_REFERENCE), 'other.example:1883');
  });
});
