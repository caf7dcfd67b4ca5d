/**
 * MQTT 3.1.1 server statements not cited elsewhere, in raw packets. The ids
 * in this file's test names are MQTT 3.1.1 ids (the numbering differs from 5.0).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { clientId } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import type { ParsedPacket } from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };
const TERN = isMosquitto ? 'Tern configuration with no mosquitto equivalent' : false;

async function client(t: TestContext, port: number, o: P.ConnectOptions = {}): Promise<RawClient> {
  return RawClient.connected(port, t, { clientId: clientId('v311'), ...o });
}

async function subscriber(t: TestContext, port: number, filter: string, qos = 2, o: P.ConnectOptions = {}): Promise<RawClient> {
  const c = await client(t, port, o);
  c.send(P.subscribe(1, [{ filter, qos }]));
  await c.expectPacket('suback');
  return c;
}

/** PINGREQ round trip; returns what arrived before the PINGRESP. */
async function sync(c: RawClient): Promise<ParsedPacket[]> {
  c.send(P.pingreq());
  const out: ParsedPacket[] = [];
  for (;;) {
    const p = await c.next();
    if (p.type === 'pingresp') return out;
    out.push(p);
  }
}

/** Reads a PUBLISH and completes its flow. */
async function receive(c: RawClient): Promise<P.PublishPacket> {
  const m = await c.expectPacket('publish');
  if (m.qos === 1) c.send(P.puback(m.id ?? 0));
  if (m.qos === 2) {
    c.send(P.pubrec(m.id ?? 0));
    await c.expectPacket('pubrel');
    c.send(P.pubcomp(m.id ?? 0));
  }
  return m;
}

/** The connection must close with no CONNACK at all [MQTT-3.1.4-1, MQTT-3.2.2-6]. */
async function closedWithoutConnack(c: RawClient): Promise<void> {
  const rest = await c.expectClose();
  assert.deepEqual(
    rest.map((p) => p.type),
    [],
  );
}

suite('MQTT 3.1.1 CONNECT', { concurrency: 4 }, () => {
  for (const [what, bytes] of [
    ['will flag 1 without will topic and message [MQTT-3.1.2-9, MQTT-3.1.3-1]', P.connect({ clientId: 'x', flags: 0x02 | 0x04 })],
    ['will flag 0 with will QoS 1 [MQTT-3.1.2-11, MQTT-3.1.2-13]', P.connect({ clientId: 'x', flags: 0x02 | 0x08 })],
    ['will flag 0 with will retain 1 [MQTT-3.1.2-11, MQTT-3.1.2-15]', P.connect({ clientId: 'x', flags: 0x02 | 0x20 })],
    ['password flag 0 with a password present [MQTT-3.1.2-20]', P.connect({ clientId: 'x', flags: 0x02 | 0x80, username: 'u', password: 'p' })],
    ['no client id field [MQTT-3.1.3-3]', P.packet(P.PT.CONNECT, 0, Buffer.concat([P.str('MQTT'), Buffer.from([4, 0x02]), P.u16(30)]))],
    ['a client id with invalid UTF-8 [MQTT-3.1.3-4]', P.packet(P.PT.CONNECT, 0, Buffer.concat([P.str('MQTT'), Buffer.from([4, 0x02]), P.u16(30), P.str(Buffer.from([0x61, 0xc3, 0x28]))]))],
    [
      'a will topic with invalid UTF-8 [MQTT-3.1.3-10]',
      P.packet(P.PT.CONNECT, 0, Buffer.concat([P.str('MQTT'), Buffer.from([4, 0x06]), P.u16(30), P.str('x'), P.str(Buffer.from([0x77, 0xc3, 0x28])), P.str('m')])),
    ],
  ] as const) {
    test(`a non-conforming CONNECT (${what}) is closed without a CONNACK [MQTT-3.1.4-1, MQTT-3.2.2-6]`, T, async (t) => {
      const { port } = await startBroker(t);
      const c = await RawClient.connect(port, t);
      c.send(bytes);
      await closedWithoutConnack(c);
    });
  }

  test('a wrong protocol name is refused (closed, at most with a refusing CONNACK) and never processed [MQTT-3.1.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await RawClient.connect(port, t);
    c.send(P.connect({ protocolName: 'MQTX', clientId: 'x' }), P.publish({ topic: 'mqtx/t', payload: 'no', retain: true }));
    const rest = await c.expectClose();
    assert.ok(rest.every((p) => p.type === 'connack' && p.returnCode !== 0), JSON.stringify(rest));
    const probe = await subscriber(t, port, 'mqtx/t', 0);
    assert.deepEqual(await sync(probe), []);
  });

  test('client ids of 1 to 23 alphanumeric characters are accepted with CONNACK 0x00 as the first packet [MQTT-3.1.3-5, MQTT-3.1.4-4, MQTT-3.2.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    for (const id of ['a', '0123456789abcdefghijKLM']) {
      const c = await RawClient.connect(port, t);
      c.send(P.connect({ clientId: id }), P.subscribe(1, ['x']));
      const first = await c.next();
      assert.equal(first.type, 'connack');
      assert.equal((first as P.ConnackPacket).returnCode, 0);
    }
  });

  test('a rejected client id gets CONNACK 0x02 with session present 0, then the close [MQTT-3.1.3-9, MQTT-3.2.2-4, MQTT-3.2.2-5]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { allowZeroLengthClientId: false } });
    const c = await RawClient.connect(port, t);
    c.send(P.connect({ clientId: '' }));
    const rest = await c.expectClose();
    assert.equal(rest.length, 1);
    const connack = rest[0] as P.ConnackPacket;
    assert.deepEqual([connack.type, connack.returnCode, connack.sessionPresent], ['connack', 2, false]);
  });

  test('after refusing a CONNECT the server processes none of the data that followed it [MQTT-3.1.4-5]', T, async (t) => {
    const { port } = await startBroker(t, { mqtt: { allowZeroLengthClientId: false } });
    const c = await RawClient.connect(port, t);
    c.send(P.connect({ clientId: '' }), P.publish({ topic: 'refused311/t', payload: 'no', qos: 1, id: 1, retain: true }));
    await c.expectClose();
    const probe = await subscriber(t, port, 'refused311/t', 1);
    assert.deepEqual(await sync(probe), []);
  });

  test('a persistent session is found by client id and keeps its subscriptions and queued messages while disconnected [MQTT-3.1.3-2, MQTT-3.1.4-3, MQTT-4.1.0-1, MQTT-4.1.0-2, MQTT-4.5.0-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const id = clientId('p311');
    const a = await subscriber(t, port, 'p311/t', 1, { clientId: id, clean: false });
    a.close();
    await a.expectClose();
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'p311/t', payload: 'queued', qos: 1, id: 1 }));
    await pub.expectPacket('puback');
    const b = await RawClient.connect(port, t);
    const connack = await b.handshake({ clientId: id, clean: false });
    assert.equal(connack.sessionPresent, true);
    assert.equal((await receive(b)).payload.toString(), 'queued');
  });

  test('retained messages are not session state: they survive the end of the publisher session [MQTT-3.1.2-7]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await client(t, port, { clean: true });
    pub.send(P.publish({ topic: 'r311/t', payload: 'kept', qos: 1, id: 1, retain: true }));
    await pub.expectPacket('puback');
    pub.send(P.disconnect());
    await pub.expectClose();
    const s = await subscriber(t, port, 'r311/t', 1);
    assert.equal((await receive(s)).payload.toString(), 'kept');
  });
});

suite('MQTT 3.1.1 wills', { concurrency: 4 }, () => {
  test('will flag 0: nothing is published when the connection drops [MQTT-3.1.2-12]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await subscriber(t, port, '#', 1);
    const c = await client(t, port);
    c.close();
    await c.expectClose();
    await obs.expectNoPacket(400);
  });

  test('will retain 0: the will is published non-retained [MQTT-3.1.2-16]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await subscriber(t, port, 'wr311/t', 1);
    const c = await client(t, port, { will: { topic: 'wr311/t', payload: 'gone', qos: 1, retain: false } });
    c.close();
    const m = await receive(obs);
    assert.deepEqual([m.payload.toString(), m.retain], ['gone', false]);
    const late = await subscriber(t, port, 'wr311/t', 1);
    assert.deepEqual(await sync(late), [], 'not kept as retained');
  });

  test('DISCONNECT discards the will [MQTT-3.14.4-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await subscriber(t, port, 'wd311/t', 1);
    const c = await client(t, port, { will: { topic: 'wd311/t', payload: 'gone', qos: 1 } });
    c.send(P.disconnect());
    await c.expectClose();
    await obs.expectNoPacket(400);
  });

  test('a DISCONNECT with reserved flags set closes the connection [MQTT-3.14.1-1, MQTT-2.2.2-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await client(t, port);
    c.send(Buffer.from([0xe1, 0x00]));
    await c.expectClose();
  });
});

suite('MQTT 3.1.1 PUBLISH and delivery', { concurrency: 4 }, () => {
  test('a PINGREQ with a reserved flag set closes the connection [MQTT-2.2.2-1, MQTT-2.2.2-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await client(t, port);
    c.send(Buffer.from([0xc1, 0x00]));
    const rest = await c.expectClose();
    assert.ok(!rest.some((p) => p.type === 'pingresp'));
  });

  test('packet ids: server PUBLISH ids are non-zero and distinct; acknowledgements echo the client ids [MQTT-2.3.1-4, MQTT-2.3.1-6, MQTT-2.3.1-7, MQTT-3.8.4-2, MQTT-3.3.4-1]', T, async (t) => {
    const { port } = await startBroker(t, { limits: { maxInflight: 50 } });
    const sub = await client(t, port);
    sub.send(P.subscribe(4242, [{ filter: 'ids311/#', qos: 2 }]));
    assert.equal((await sub.expectPacket('suback')).id, 4242);
    const pub = await client(t, port);
    for (let i = 0; i < 5; i++) {
      pub.send(P.publish({ topic: 'ids311/t', payload: String(i), qos: 1, id: 1000 + i }));
      assert.equal((await pub.expectPacket('puback')).id, 1000 + i);
    }
    pub.send(P.publish({ topic: 'ids311/t', payload: 'q2', qos: 2, id: 65535 }));
    assert.equal((await pub.expectPacket('pubrec')).id, 65535);
    pub.send(P.pubrel(65535));
    assert.equal((await pub.expectPacket('pubcomp')).id, 65535);
    const got = (await sync(sub)).filter((p): p is P.PublishPacket => p.type === 'publish');
    assert.equal(got.length, 6);
    const ids = got.map((p) => p.id ?? 0);
    assert.ok(ids.every((id) => id > 0));
    assert.equal(new Set(ids).size, 6);
    sub.send(P.unsubscribe(777, ['ids311/#']));
    assert.equal((await sub.expectPacket('unsuback')).id, 777);
  });

  test('forwarded DUP is not copied from the incoming DUP, and is 0 for QoS 0 [MQTT-3.3.1-2, MQTT-3.3.1-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const sub = await subscriber(t, port, 'dup311/#', 1);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'dup311/a', payload: 'a', qos: 1, id: 1, dup: true }));
    pub.send(P.publish({ topic: 'dup311/b', payload: 'b', qos: 0 }));
    const a = await receive(sub);
    const b = await receive(sub);
    assert.deepEqual([a.dup, b.dup], [false, false]);
  });

  test('RETAIN 0 neither stores nor removes the retained message [MQTT-3.3.1-12]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'r0311/t', payload: 'kept', qos: 1, id: 1, retain: true }));
    pub.send(P.publish({ topic: 'r0311/t', payload: 'live', qos: 1, id: 2 }));
    pub.send(P.publish({ topic: 'r0311/t', payload: '', qos: 1, id: 3 }));
    for (let i = 0; i < 3; i++) await pub.expectPacket('puback');
    const s = await subscriber(t, port, 'r0311/t', 1);
    assert.equal((await receive(s)).payload.toString(), 'kept');
    assert.deepEqual(await sync(s), []);
  });

  test('a topic name with invalid UTF-8 closes the connection [MQTT-3.3.2-1]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await client(t, port);
    c.send(P.publish({ topic: Buffer.from([0x61, 0xc3, 0x28]), payload: 'x', qos: 1, id: 1 }));
    const rest = await c.expectClose();
    assert.ok(!rest.some((p) => p.type === 'puback'));
  });

  test('forwarded topic names are the published ones and match the filter [MQTT-3.3.2-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const s = await subscriber(t, port, 'tm311/+/x', 1);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'tm311/abc/x', payload: '1', qos: 1, id: 1 }));
    assert.equal((await receive(s)).topic, 'tm311/abc/x');
  });

  test('a BOM in a topic is neither skipped nor stripped; matching does no normalisation [MQTT-1.5.3-3, MQTT-4.7.3-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const exact = await subscriber(t, port, '\uFEFFb311/É', 0);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'b311/É', payload: 'stripped' }));
    pub.send(P.publish({ topic: '\uFEFFb311/E\u0301', payload: 'decomposed' }));
    pub.send(P.publish({ topic: '\uFEFFb311/É', payload: 'exact' }));
    const m = await receive(exact);
    assert.deepEqual([m.topic, m.payload.toString()], ['\uFEFFb311/É', 'exact']);
    assert.deepEqual(await sync(exact), []);
  });

  test('after PUBACK a QoS 1 PUBLISH with the same id is a new message [MQTT-4.3.2-2]', T, async (t) => {
    const { port } = await startBroker(t);
    const s = await subscriber(t, port, 'q1311/t', 1);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'q1311/t', payload: '1', qos: 1, id: 9 }));
    await pub.expectPacket('puback');
    pub.send(P.publish({ topic: 'q1311/t', payload: '2', qos: 1, id: 9, dup: true }));
    await pub.expectPacket('puback');
    assert.deepEqual([(await receive(s)).payload.toString(), (await receive(s)).payload.toString()], ['1', '2']);
  });

  test(
    'an unauthorised PUBLISH is acknowledged (or the connection closed) and not delivered [MQTT-3.3.5-2]',
    { ...T, skip: TERN },
    async (t) => {
      const dir = await mkdtemp(join(tmpdir(), 'tern-acl-'));
      t.after(() => rm(dir, { recursive: true, force: true }));
      const acl = join(dir, 'acl');
      await writeFile(acl, 'topic read secret/#\ntopic readwrite open/#\n');
      const { port } = await startBroker(t, { auth: { aclFile: acl, allowAnonymous: true } });
      const s = await subscriber(t, port, 'secret/#', 1);
      const pub = await client(t, port);
      pub.send(P.publish({ topic: 'secret/x', payload: 'nope', qos: 1, id: 1 }));
      const p = await pub.next().catch(() => undefined);
      assert.ok(p === undefined || p.type === 'puback', 'positive PUBACK or close');
      assert.deepEqual(await sync(s), [], 'not delivered');
    },
  );
});

suite('MQTT 3.1.1 SUBSCRIBE and UNSUBSCRIBE', { concurrency: 4 }, () => {
  for (const [what, bytes] of [
    ['a topic filter with invalid UTF-8 [MQTT-3.8.3-1]', P.subscribe(1, [{ filter: Buffer.from([0x61, 0xc3, 0x28]) }])],
    ['requested QoS 3 [MQTT-3.8.3-4]', P.subscribe(1, [{ filter: 'a', qos: 3 }])],
    ['reserved bits set in the requested QoS byte [MQTT-3.8.3-4]', P.subscribe(1, [{ filter: 'a', qos: 0, options: 0x04 }])],
    ['a topic filter containing U+0000 [MQTT-4.7.3-2]', P.subscribe(1, [{ filter: Buffer.from('a\u0000b') }])],
    ['an UNSUBSCRIBE filter with invalid UTF-8 [MQTT-3.10.3-1]', P.packet(P.PT.UNSUBSCRIBE, 2, Buffer.concat([P.u16(1), P.str(Buffer.from([0x61, 0xc3, 0x28]))]))],
  ] as const) {
    test(`${what} closes the connection without an acknowledgement`, T, async (t) => {
      const { port } = await startBroker(t);
      const c = await client(t, port);
      c.send(bytes);
      const rest = await c.expectClose();
      assert.ok(!rest.some((p) => p.type === 'suback' || p.type === 'unsuback'));
    });
  }

  test('wildcard subscriptions disabled: SUBACK 0x80 for wildcard filters [MQTT-3.8.3-2]', { ...T, skip: TERN }, async (t) => {
    const { port } = await startBroker(t, { mqtt: { wildcardSubscriptions: false } });
    const c = await client(t, port);
    c.send(P.subscribe(1, [{ filter: 'a/+', qos: 1 }, { filter: 'a/b', qos: 1 }, { filter: '#', qos: 0 }]));
    assert.deepEqual((await c.expectPacket('suback')).granted, [0x80, 1, 0x80]);
  });

  test('several filters in one SUBSCRIBE / UNSUBSCRIBE get one SUBACK / UNSUBACK [MQTT-3.8.4-4, MQTT-3.10.4-6]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await client(t, port);
    c.send(P.subscribe(1, [{ filter: 'm/a', qos: 0 }, { filter: 'm/b', qos: 1 }, { filter: 'm/c', qos: 2 }]));
    assert.deepEqual((await c.expectPacket('suback')).granted, [0, 1, 2]);
    c.send(P.unsubscribe(2, ['m/a', 'm/b', 'm/c']));
    await c.expectPacket('unsuback');
    assert.deepEqual(await sync(c), [], 'one acknowledgement each');
  });

  test('after UNSUBSCRIBE no new messages arrive, but a QoS 2 delivery already started completes [MQTT-3.10.4-2, MQTT-3.10.4-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const c = await subscriber(t, port, 'u311/t', 2);
    const pub = await client(t, port);
    pub.send(P.publish({ topic: 'u311/t', payload: 'first', qos: 2, id: 1 }));
    await pub.expectPacket('pubrec');
    pub.send(P.pubrel(1));
    await pub.expectPacket('pubcomp');
    const m = await c.expectPacket('publish');
    c.send(P.unsubscribe(2, ['u311/t']));
    await c.expectPacket('unsuback');
    c.send(P.pubrec(m.id ?? 0));
    assert.equal((await c.expectPacket('pubrel')).id, m.id);
    c.send(P.pubcomp(m.id ?? 0));
    pub.send(P.publish({ topic: 'u311/t', payload: 'second', qos: 1, id: 2 }));
    await pub.expectPacket('puback');
    assert.deepEqual(await sync(c), []);
  });
});
