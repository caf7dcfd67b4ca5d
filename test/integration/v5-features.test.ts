/**
 * MQTT 5.0 features through MQTT.js (protocolVersion 5): what a real v5
 * client sees. The raw-packet conformance tests (test/conformance/) pin the
 * wire details; these show the features work end to end with a common client.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { MessageCollector, clientId } from '../helpers/mqtt-client.js';
import { PacketCollector, connect5 } from '../conformance/helpers/mqtt5.js';

const T = { timeout: 10_000 };
const TERN = isMosquitto ? 'Tern configuration with no mosquitto equivalent' : false;

suite('MQTT.js v5 features', { concurrency: 4 }, () => {
  test('CONNACK: assigned client identifier for an empty id, and Server Keep Alive from limits.maxKeepalive [MQTT-3.2.2-16]', { ...T, skip: TERN }, async (t) => {
    const { url } = await startBroker(t, { limits: { maxKeepalive: 20 } });
    const { connack } = await connect5(t, url, { clientId: '', keepalive: 60 });
    assert.ok((connack.properties?.assignedClientIdentifier ?? '').length > 0);
    assert.equal(connack.properties?.serverKeepAlive, 20);
  });

  test('capabilities from config reach MQTT.js: maximum QoS, retain, wildcard, subscription identifier, shared availability [MQTT-3.2.2-9]', { ...T, skip: TERN }, async (t) => {
    const { url } = await startBroker(t, {
      mqtt: { maxQos: 1, retainAvailable: false, wildcardSubscriptions: false, subscriptionIdentifiers: false, sharedSubscriptions: false },
    });
    const { connack } = await connect5(t, url);
    const p = connack.properties ?? {};
    assert.deepEqual(
      [p.maximumQoS, p.retainAvailable, p.wildcardSubscriptionAvailable, p.subscriptionIdentifiersAvailable, p.sharedSubscriptionAvailable],
      [1, false, false, false, false],
    );
  });

  test('no local, retain as published and retain handling via MQTT.js subscribe options [MQTT-3.8.3-3, MQTT-3.3.1-13, MQTT-3.3.1-11]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: pub } = await connect5(t, url);
    await pub.publishAsync('opts/r', 'kept', { qos: 1, retain: true });
    const { client } = await connect5(t, url);
    const got = new PacketCollector(client);
    await client.subscribeAsync('opts/#', { qos: 1, nl: true, rap: true, rh: 2 });
    await client.publishAsync('opts/self', 'mine', { qos: 1 });
    await pub.publishAsync('opts/other', 'theirs', { qos: 1, retain: true });
    const [m] = await got.waitFor(1);
    assert.deepEqual([m!.topic, m!.payload.toString(), m!.retain], ['opts/other', 'theirs', true]);
    assert.equal(got.packets.length, 1, 'no retained on subscribe (rh 2), not its own message (nl)');
  });

  test('shared subscription with MQTT.js: each message to one member [MQTT 5.0 §4.8.2]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: a } = await connect5(t, url);
    const { client: b } = await connect5(t, url);
    const ga = new MessageCollector(a);
    const gb = new MessageCollector(b);
    await a.subscribeAsync('$share/workers/jobs', { qos: 1 });
    await b.subscribeAsync('$share/workers/jobs', { qos: 1 });
    const { client: pub } = await connect5(t, url);
    for (let i = 0; i < 6; i++) await pub.publishAsync('jobs', `j${i}`, { qos: 1 });
    const deadline = Date.now() + 3000;
    while (ga.count + gb.count < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const all = [...ga.messages, ...gb.messages].map((m) => m.payload).sort();
    assert.deepEqual(all, ['j0', 'j1', 'j2', 'j3', 'j4', 'j5']);
    assert.ok(ga.count > 0 && gb.count > 0);
  });

  test('message expiry via MQTT.js: the forwarded interval is at most the published one [MQTT-3.3.2-6]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: sub } = await connect5(t, url);
    const got = new PacketCollector(sub);
    await sub.subscribeAsync('mx/t', { qos: 1 });
    const { client: pub } = await connect5(t, url);
    await pub.publishAsync('mx/t', 'x', { qos: 1, properties: { messageExpiryInterval: 30 } });
    const [m] = await got.waitFor(1);
    const left = m!.properties?.messageExpiryInterval;
    assert.ok(left !== undefined && left <= 30 && left >= 29, String(left));
  });

  test('will delay via MQTT.js: reconnecting in time suppresses the will [MQTT-3.1.3-9]', { timeout: 15_000 }, async (t) => {
    const { url } = await startBroker(t);
    const { client: obs } = await connect5(t, url);
    const got = new MessageCollector(obs);
    await obs.subscribeAsync('mw/t', { qos: 1 });
    const id = clientId('mw');
    const opts = {
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 30 },
      will: { topic: 'mw/t', payload: Buffer.from('gone'), qos: 1 as const, retain: false, properties: { willDelayInterval: 1 } },
    };
    const { client: first } = await connect5(t, url, opts);
    first.stream.destroy();
    await new Promise((r) => setTimeout(r, 300));
    await connect5(t, url, opts);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(got.count, 0);
  });

  test('Receive Maximum 3 via MQTT.js: 20 QoS 1 messages all arrive, in order, as the window frees up [MQTT-4.9.0-2, MQTT-4.6.0-5]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: sub } = await connect5(t, url, { properties: { receiveMaximum: 3 } });
    const got = new MessageCollector(sub);
    await sub.subscribeAsync('rmx/t', { qos: 1 });
    const { client: pub } = await connect5(t, url);
    for (let i = 0; i < 20; i++) await pub.publishAsync('rmx/t', String(i), { qos: 1 });
    const msgs = await got.waitFor(20);
    assert.deepEqual(
      msgs.map((m) => m.payload),
      Array.from({ length: 20 }, (_, i) => String(i)),
    );
  });
});
