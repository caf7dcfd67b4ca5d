/**
 * Shared subscriptions `$share/{group}/{filter}` [MQTT 5.0 §4.8.2], for v5
 * and (as an extension, like mosquitto) v3.1.1 clients.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { clientId } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';
import { Client5, Prop, RC, ack, cid, elapse, publish, type Connect5Options } from './helpers/v5.js';

const T = { timeout: 10_000 };

/** A v5 member of `$share/{group}/{filter}`. */
async function member5(t: TestContext, port: number, group: string, filter: string, qos = 1, o: Connect5Options = {}): Promise<Client5> {
  const c = await Client5.connected(port, t, o);
  assert.deepEqual(await c.sub(1, [{ filter: `$share/${group}/${filter}`, qos }]), [qos]);
  return c;
}

/** A v3.1.1 member of `$share/{group}/{filter}`. */
async function member4(t: TestContext, port: number, group: string, filter: string, qos = 1): Promise<RawClient> {
  const c = await RawClient.connected(port, t, { clientId: clientId('sh4') });
  c.send(P.subscribe(1, [{ filter: `$share/${group}/${filter}`, qos }]));
  assert.deepEqual((await c.expectPacket('suback')).granted, [qos]);
  return c;
}

/** Publishes `n` QoS 1 messages `prefix0..` on `topic` and waits for their PUBACKs. */
async function publishN(pub: Client5, topic: string, n: number, prefix = 'm'): Promise<void> {
  for (let i = 0; i < n; i++) pub.send(publish({ topic, payload: `${prefix}${i}`, qos: 1, id: i + 1 }));
  for (let i = 0; i < n; i++) await pub.expect('puback');
}

/** Drains every PUBLISH a v5 member received so far (acknowledging them); returns the payloads. */
async function drain5(c: Client5): Promise<string[]> {
  const got: string[] = [];
  for (const p of await c.sync()) {
    if (p.name !== 'publish') continue;
    await c.ackPublish(p);
    got.push(p.payload.toString());
  }
  return got;
}

/** Same for a v3.1.1 member: PINGREQ round trip, then everything before the PINGRESP. */
async function drain4(c: RawClient): Promise<string[]> {
  c.send(P.pingreq());
  const got: string[] = [];
  for (;;) {
    const p = await c.next();
    if (p.type === 'pingresp') return got;
    if (p.type === 'publish') {
      if (p.qos === 1) c.send(P.puback(p.id ?? 0));
      got.push(p.payload.toString());
    }
  }
}

function range(n: number, prefix = 'm'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}

suite('shared subscriptions', { concurrency: 4 }, () => {
  test('v5: each message goes to exactly one member, round robin [MQTT 5.0 §4.8.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'g', 'sh/t');
    const b = await member5(t, port, 'g', 'sh/t');
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'sh/t', 10);
    const ga = await drain5(a);
    const gb = await drain5(b);
    assert.deepEqual([...ga, ...gb].sort(), range(10).sort(), 'every message exactly once across the group');
    assert.deepEqual([ga.length, gb.length], [5, 5], 'round robin');
  });

  test('v3.1.1 clients can share a subscription too: one member per message', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member4(t, port, 'g4', 'sh4/t');
    const b = await member4(t, port, 'g4', 'sh4/t');
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'sh4/t', 6);
    const ga = await drain4(a);
    const gb = await drain4(b);
    assert.deepEqual([...ga, ...gb].sort(), range(6).sort());
    assert.deepEqual([ga.length, gb.length], [3, 3]);
  });

  test('v5 and v3.1.1 members share one group', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'mix', 'shm/t');
    const b = await member4(t, port, 'mix', 'shm/t');
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'shm/t', 4);
    const got = [...(await drain5(a)), ...(await drain4(b))];
    assert.deepEqual(got.sort(), range(4).sort());
  });

  test('every group gets its own copy, and so does a non-shared subscriber [MQTT 5.0 §4.8.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const g1 = await member5(t, port, 'g1', 'shg/t');
    const g2a = await member5(t, port, 'g2', 'shg/t');
    const g2b = await member5(t, port, 'g2', 'shg/t');
    const plain = await Client5.connected(port, t);
    await plain.sub(1, [{ filter: 'shg/t', qos: 1 }]);
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'shg/t', 4);
    assert.deepEqual((await drain5(g1)).sort(), range(4).sort());
    assert.deepEqual([...(await drain5(g2a)), ...(await drain5(g2b))].sort(), range(4).sort());
    assert.deepEqual((await drain5(plain)).sort(), range(4).sort());
  });

  test(
    'a client with a shared and a non-shared subscription matching a message gets a copy for each [MQTT 5.0 §4.8.2]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const c = await member5(t, port, 'both', 'shb/t');
      await c.sub(2, [{ filter: 'shb/t', qos: 1 }]);
      const pub = await Client5.connected(port, t);
      await publishN(pub, 'shb/t', 1);
      assert.deepEqual(await drain5(c), ['m0', 'm0']);
    },
  );

  test('the group survives churn: a member that leaves gets nothing more, a new member gets its share', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'churn', 'shc/t');
    const b = await member5(t, port, 'churn', 'shc/t');
    a.send(P.disconnect(0));
    await a.expectClose();
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'shc/t', 4, 'x');
    assert.deepEqual((await drain5(b)).sort(), range(4, 'x').sort(), 'all to the remaining member');
    const c = await member5(t, port, 'churn', 'shc/t');
    await publishN(pub, 'shc/t', 4, 'y');
    const gb = await drain5(b);
    const gc = await drain5(c);
    assert.deepEqual([...gb, ...gc].sort(), range(4, 'y').sort());
    assert.ok(gc.length > 0, 'the new member takes part');
  });

  test('a disconnected member whose session persists does not take messages while others are connected', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'off', 'sho/t', 1, { properties: [[Prop.SESSION_EXPIRY_INTERVAL, 60]] });
    const b = await member5(t, port, 'off', 'sho/t');
    a.close();
    await a.expectClose();
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'sho/t', 4);
    assert.deepEqual((await drain5(b)).sort(), range(4).sort());
  });

  test('each member gets the QoS it was granted [MQTT-4.8.2-3]', T, async (t) => {
    const { port } = await startBroker(t);
    const q0 = await member5(t, port, 'qos', 'shq/t', 0);
    const q1 = await member5(t, port, 'qos', 'shq/t', 1);
    const pub = await Client5.connected(port, t);
    for (let i = 0; i < 4; i++) {
      pub.send(publish({ topic: 'shq/t', payload: `m${i}`, qos: 2, id: i + 1 }));
      await pub.expect('pubrec');
      pub.send(P.pubrel(i + 1));
      await pub.expect('pubcomp');
    }
    const s0 = await q0.sync();
    const s1 = await q1.sync();
    assert.ok(s0.length > 0 && s1.length > 0);
    assert.ok(s0.every((p) => p.qos === 0));
    assert.ok(s1.every((p) => p.qos === 1));
  });

  test('retained messages are not sent on a shared subscribe [MQTT 5.0 §4.8.2]', T, async (t) => {
    const { port } = await startBroker(t);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'shr/t', payload: 'kept', qos: 1, id: 1, retain: true }));
    await pub.expect('puback');
    const a = await member5(t, port, 'ret', 'shr/#');
    assert.deepEqual(await a.sync(), []);
  });

  test('unsubscribing a member removes it from the group', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'uns', 'shu/t');
    const b = await member5(t, port, 'uns', 'shu/t');
    a.send(P.unsubscribe(2, ['$share/uns/shu/t'], { protocolVersion: 5 }));
    assert.deepEqual((await a.expect('unsuback')).reasonCodes, [0]);
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'shu/t', 4);
    assert.deepEqual(await drain5(a), []);
    assert.equal((await drain5(b)).length, 4);
  });

  test(
    'a QoS 1 message unacknowledged by a member whose session ends goes to another member [MQTT 5.0 §4.8.2]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const a = await member5(t, port, 'redo', 'shx/t', 1, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
      const pub = await Client5.connected(port, t);
      await publishN(pub, 'shx/t', 1);
      const m = await a.expect('publish'); // never acknowledged
      assert.equal(m.payload.toString(), 'm0');
      const b = await member5(t, port, 'redo', 'shx/t');
      a.close(); // session expiry 0: the session ends now
      await a.expectClose();
      const again = await b.receive(3000);
      assert.equal(again.payload.toString(), 'm0');
    },
  );

  test(
    'QoS 1/2 messages queued for a member (not yet sent) go to other members when its session ends [MQTT 5.0 §4.8.2]',
    T,
    async (t) => {
      const { port } = await startBroker(t);
      const a = await member5(t, port, 'redoq', 'shy/t', 2, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
      const b = await member5(t, port, 'redoq', 'shy/t', 2, { properties: [[Prop.RECEIVE_MAXIMUM, 1]] });
      const pub = await Client5.connected(port, t);
      for (let i = 0; i < 4; i++) pub.send(publish({ topic: 'shy/t', payload: `q${i}`, qos: 1, id: i + 1 }));
      for (let i = 0; i < 4; i++) await pub.expect('puback');
      // Each member holds one in flight and one queued; a leaves without acknowledging.
      const ma = (await a.expect('publish')).payload.toString();
      a.close();
      await a.expectClose();
      const got = new Set<string>();
      const deadline = Date.now() + 3000;
      const wanted = ['q0', 'q1', 'q2', 'q3'].filter((m) => m !== ma);
      while (!wanted.every((m) => got.has(m)) && Date.now() < deadline) {
        try {
          got.add((await b.receive(Math.max(1, deadline - Date.now()))).payload.toString());
        } catch {
          break;
        }
      }
      const missing = wanted.filter((m) => !got.has(m));
      assert.deepEqual(missing, [], `b got ${JSON.stringify([...got])}; a held ${ma}`);
    },
  );

  test(
    'a QoS 2 message already sent to a member whose session ends is not sent to another member [MQTT-4.8.2-5]',
    {
      ...T,
    },
    async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'q2', 'shz/t', 2);
    const b = await member5(t, port, 'q2', 'shz/t', 2);
    const pub = await Client5.connected(port, t);
    pub.send(publish({ topic: 'shz/t', payload: 'only-a', qos: 2, id: 1 }));
    await pub.expect('pubrec');
    pub.send(P.pubrel(1));
    await pub.expect('pubcomp');
    // Round robin: the first message goes to one member. Make sure it is `a` (or swap roles).
    const [holder, other] = (await a.sync()).length > 0 ? [a, b] : [b, a];
    holder.close();
    await holder.expectClose();
    await elapse(200);
    assert.deepEqual(await other.sync(), []);
  });

  test('a QoS 2 message to a member whose connection breaks is completed to that member when it reconnects [MQTT-4.8.2-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const props = [[Prop.SESSION_EXPIRY_INTERVAL, 60]] as const;
    const ids = [cid('sha'), cid('shb')];
    const a = await member5(t, port, 'resume', 'shw/t', 2, { clientId: ids[0], properties: props });
    const b = await member5(t, port, 'resume', 'shw/t', 2, { clientId: ids[1], properties: props });
    const pub = await Client5.connected(port, t);
    await pub.publish2({ topic: 'shw/t', payload: 'q2', id: 1 });
    const fromA = await a.sync();
    const [holder, other, holderId] = fromA.length > 0 ? [a, b, ids[0]] : [b, a, ids[1]];
    const first = (fromA.length > 0 ? fromA : await b.sync()).find((p) => p.name === 'publish');
    assert.ok(first !== undefined);
    holder.close();
    await holder.expectClose();
    assert.deepEqual(await other.sync(), [], 'not given to the other member');
    const back = await Client5.connected(port, t, { clientId: holderId, clean: false, properties: props });
    const again = await back.expect('publish');
    assert.deepEqual([again.packetId, again.dup, again.payload.toString()], [first.packetId, true, 'q2']);
  });

  test('a message a member rejects with PUBACK >= 0x80 is discarded, not sent to another member [MQTT-4.8.2-6]', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'rej', 'shj/t');
    const b = await member5(t, port, 'rej', 'shj/t');
    const pub = await Client5.connected(port, t);
    await publishN(pub, 'shj/t', 1);
    const fromA = await a.sync();
    const [holder, other] = fromA.length > 0 ? [a, b] : [b, a];
    const m = (fromA.length > 0 ? fromA : await b.sync()).find((p) => p.name === 'publish');
    assert.ok(m !== undefined);
    holder.send(ack(P.PT.PUBACK, m.packetId, 0x87));
    assert.deepEqual(await holder.sync(), []);
    assert.deepEqual(await other.sync(), []);
  });

  test('a member publishing to its own shared topic can receive its message (no local does not apply)', T, async (t) => {
    const { port } = await startBroker(t);
    const a = await member5(t, port, 'self', 'shs/t');
    a.send(publish({ topic: 'shs/t', payload: 'me', qos: 1, id: 9 }));
    const got = await a.sync();
    assert.ok(got.some((p) => p.name === 'puback' && p.reasonCode === RC.SUCCESS));
    assert.ok(got.some((p) => p.name === 'publish' && p.payload.toString() === 'me'));
  });
});
