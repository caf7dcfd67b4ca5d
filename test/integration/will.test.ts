/**
 * Will messages [MQTT-3.1.2-8 .. MQTT-3.1.2-17].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { clientId } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

/** A raw client subscribed to `filter` at QoS 2 that acknowledges everything it reads. */
async function observer(t: TestContext, port: number, filter: string): Promise<RawClient> {
  const c = await RawClient.connected(port, t, { clientId: clientId('obs') });
  c.send(P.subscribe(1, [{ filter, qos: 2 }]));
  assert.deepEqual((await c.expectPacket('suback')).granted, [2]);
  return c;
}

/** Reads the next PUBLISH on `c` (completing its QoS flow). */
async function nextPublish(c: RawClient, timeoutMs = 3000): Promise<P.PublishPacket> {
  const m = await c.expectPacket('publish', timeoutMs);
  if (m.qos === 1) c.send(P.puback(m.id ?? 0));
  if (m.qos === 2) {
    c.send(P.pubrec(m.id ?? 0));
    await c.expectPacket('pubrel');
    c.send(P.pubcomp(m.id ?? 0));
  }
  return m;
}

test('the will is published when the connection drops without DISCONNECT (network error) [MQTT-3.1.2-8]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/net');
  const c = await RawClient.connected(port, t, { clientId: clientId('w'), will: { topic: 'will/net', payload: 'gone' } });
  c.close();
  const m = await nextPublish(obs);
  assert.deepEqual([m.topic, m.payload.toString()], ['will/net', 'gone']);
});

test('the will is published when the keep-alive expires [MQTT-3.1.2-8, MQTT-3.1.2-24]', { timeout: 15_000 }, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/ka');
  await RawClient.connected(port, t, { clientId: clientId('w'), keepalive: 1, will: { topic: 'will/ka', payload: 'timeout' } });
  // Silent from here on: the broker must give up after 1.5 s (plus timer slack).
  // Mosquitto 2.0.11 only notices expired keep-alives every ~5 s (see keepalive.test.ts).
  const m = await nextPublish(obs, isMosquitto ? 8000 : 3500);
  assert.deepEqual([m.topic, m.payload.toString()], ['will/ka', 'timeout']);
});

test('the will is published when the server closes the connection for a protocol error [MQTT-3.1.2-8]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/proto');
  const c = await RawClient.connected(port, t, { clientId: clientId('w'), will: { topic: 'will/proto', payload: 'bad' } });
  c.send(P.publish({ topic: 'not/allowed/#', payload: 'x' })); // wildcard in a topic name [MQTT-3.3.2-2]
  await c.expectClose();
  const m = await nextPublish(obs);
  assert.deepEqual([m.topic, m.payload.toString()], ['will/proto', 'bad']);
});

test('the will of a connection closed by a session takeover is published [MQTT-3.1.4-2, MQTT-3.1.2-8]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/takeover');
  const id = clientId('w');
  const older = await RawClient.connected(port, t, { clientId: id, will: { topic: 'will/takeover', payload: 'taken' } });
  await RawClient.connected(port, t, { clientId: id });
  await older.expectClose();
  const m = await nextPublish(obs);
  assert.deepEqual([m.topic, m.payload.toString()], ['will/takeover', 'taken']);
});

test('the will is discarded, not published, after a DISCONNECT [MQTT-3.1.2-10]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/clean');
  const c = await RawClient.connected(port, t, { clientId: clientId('w'), will: { topic: 'will/clean', payload: 'must-not-appear' } });
  c.send(P.disconnect());
  await c.expectClose();
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'will/clean', payload: 'marker' }));
  const m = await nextPublish(obs);
  assert.equal(m.payload.toString(), 'marker');
});

test('will QoS and retain are honoured: delivered at will QoS and kept as the retained message [MQTT-3.1.2-14, MQTT-3.1.2-17]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/retained');
  const c = await RawClient.connected(port, t, {
    clientId: clientId('w'),
    will: { topic: 'will/retained', payload: 'last-words', qos: 1, retain: true },
  });
  c.close();
  const live = await nextPublish(obs);
  assert.deepEqual([live.payload.toString(), live.qos], ['last-words', 1]);

  const later = await RawClient.connected(port, t, { clientId: clientId('late') });
  later.send(P.subscribe(1, [{ filter: 'will/retained', qos: 2 }]));
  await later.expectPacket('suback');
  const kept = await later.expectPacket('publish');
  assert.deepEqual([kept.payload.toString(), kept.qos, kept.retain], ['last-words', 1, true]);
  later.send(P.puback(kept.id ?? 0));
});

test('will QoS 2 is delivered at QoS 2 and a non-retained will is not stored [MQTT-3.1.2-14, MQTT-3.1.2-15]', T, async (t) => {
  const { port } = await startBroker(t);
  const obs = await observer(t, port, 'will/q2');
  const c = await RawClient.connected(port, t, { clientId: clientId('w'), will: { topic: 'will/q2', payload: 'q2', qos: 2 } });
  c.close();
  const live = await nextPublish(obs);
  assert.deepEqual([live.payload.toString(), live.qos, live.retain], ['q2', 2, false]);

  const later = await RawClient.connected(port, t, { clientId: clientId('late') });
  later.send(P.subscribe(1, [{ filter: 'will/q2', qos: 2 }]));
  await later.expectPacket('suback');
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'will/q2', payload: 'marker' }));
  assert.equal((await later.expectPacket('publish')).payload.toString(), 'marker');
});
