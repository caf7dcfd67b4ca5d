/**
 * Three Tern nodes on one real redis-server behave as one broker: pub/sub
 * across nodes at QoS 0/1/2, only nodes with subscribers get messages,
 * session resume and take-over across nodes, retained messages and shared
 * subscriptions across nodes. Clients are MQTT.js over real TCP.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { clientId, connectMqtt, MessageCollector, mqttClient } from '../helpers/mqtt-client.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';
import { startNodes } from './helpers.js';

const redis: RedisServer = await startRedisServer({ after });

describe('cluster of three nodes', () => {
  test('a message published on one node reaches subscribers on the others at QoS 0, 1 and 2', async (t) => {
    const [a, b, c] = await startNodes(t, redis.url, 3);
    const subB = await connectMqtt(t, b!.url, { clientId: clientId('sb') });
    const subC = await connectMqtt(t, c!.url, { clientId: clientId('sc') });
    const gotB = new MessageCollector(subB);
    const gotC = new MessageCollector(subC);
    await subB.subscribeAsync('x/+', { qos: 2 });
    await subC.subscribeAsync('x/#', { qos: 2 });
    const pub = await connectMqtt(t, a!.url, { clientId: clientId('pa') });
    for (const qos of [0, 1, 2] as const) await pub.publishAsync(`x/${qos}`, `m${qos}`, { qos });
    const b3 = await gotB.waitFor(3, 5000);
    const c3 = await gotC.waitFor(3, 5000);
    assert.deepEqual(b3.map((m) => [m.topic, m.payload, m.qos]), [['x/0', 'm0', 0], ['x/1', 'm1', 1], ['x/2', 'm2', 2]]);
    assert.deepEqual(c3.map((m) => m.payload), ['m0', 'm1', 'm2']);
    await sleep(200);
    assert.equal(gotB.count, 3, 'exactly once each');
  });

  test('order per publisher and topic holds across nodes, and nodes without subscribers get nothing', async (t) => {
    const [a, b, c] = await startNodes(t, redis.url, 3, { http: { enabled: true, port: 0 }, sys: { interval: 0 } });
    const sub = await connectMqtt(t, b!.url, { clientId: clientId('s') });
    const got = new MessageCollector(sub);
    await sub.subscribeAsync('seq', { qos: 1 });
    const pub = await connectMqtt(t, a!.url, { clientId: clientId('p') });
    const n = 500;
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync('seq', String(i), { qos: 1 })));
    const received = await got.waitFor(n, 10_000);
    assert.deepEqual(received.map((m) => Number(m.payload)), Array.from({ length: n }, (_, i) => i));
    const fa = a!.broker.core.cluster!.forwarder.stats;
    const fc = c!.broker.core.cluster!.forwarder.stats;
    assert.equal(fa.messagesOut, n, 'one forward per message, to node b only');
    assert.ok(fa.batchesOut < n, `messages travel in batches (${fa.batchesOut} batches)`);
    assert.equal(fc.messagesIn, 0, 'node c has no subscriber and gets nothing');
    // The same figures in /metrics.
    const text = await (await fetch(`http://127.0.0.1:${a!.broker.operations!.address!.port}/metrics`)).text();
    assert.match(text, new RegExp(`^tern_cluster_forwarded_messages_total\\{direction="out"\\} ${n}$`, 'm'));
    assert.match(text, /^tern_cluster_up 1$/m);
  });

  test('a persistent session resumes on another node with its queued messages', async (t) => {
    const [a, b] = await startNodes(t, redis.url, 2);
    const id = clientId('persist');
    const first = await connectMqtt(t, a!.url, { clientId: id, clean: false });
    await first.subscribeAsync('q/#', { qos: 1 });
    await first.endAsync();
    const pub = await connectMqtt(t, b!.url, { clientId: clientId('p') });
    for (let i = 0; i < 5; i++) await pub.publishAsync('q/m', `q${i}`, { qos: 1 });
    const again = mqttClient(t, b!.url, { clientId: id, clean: false });
    const got = new MessageCollector(again);
    const connack = new Promise<boolean>((resolve) => again.once('connect', (p) => resolve(p.sessionPresent)));
    assert.equal(await connack, true, 'session present on the other node');
    const msgs = await got.waitFor(5, 5000);
    assert.deepEqual(msgs.map((m) => m.payload), ['q0', 'q1', 'q2', 'q3', 'q4']);
    // The subscription moved too: new messages reach it on node b.
    await pub.publishAsync('q/m', 'after', { qos: 1 });
    await got.waitForPayload('after', 5000);
  });

  test('connecting on node b takes over the connection on node a', async (t) => {
    const [a, b] = await startNodes(t, redis.url, 2);
    const id = clientId('dup');
    const old = await connectMqtt(t, a!.url, { clientId: id, clean: false, reconnectPeriod: 0, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    await old.subscribeAsync('t/#', { qos: 1 });
    const closed = new Promise<number | undefined>((resolve) => old.once('disconnect', (p) => resolve(p.reasonCode)));
    const fresh = await connectMqtt(t, b!.url, { clientId: id, clean: false, protocolVersion: 5, properties: { sessionExpiryInterval: 300 } });
    assert.equal(await closed, 0x8e, 'old connection told: session taken over');
    const got = new MessageCollector(fresh);
    const pub = await connectMqtt(t, a!.url, { clientId: clientId('p') });
    await pub.publishAsync('t/1', 'hello', { qos: 1 });
    await got.waitForPayload('hello', 5000);
    assert.equal(a!.broker.core.sessions.has(id), false, 'node a let go of the session');
  });

  test('retained messages are seen from every node', async (t) => {
    const [a, b, c] = await startNodes(t, redis.url, 3);
    const pub = await connectMqtt(t, a!.url, { clientId: clientId('p') });
    await pub.publishAsync('r/1', 'kept', { qos: 1, retain: true });
    for (const node of [b!, c!]) {
      const sub = await connectMqtt(t, node.url, { clientId: clientId('s') });
      const got = new MessageCollector(sub);
      await sub.subscribeAsync('r/#', { qos: 1 });
      const [m] = await got.waitFor(1, 5000);
      assert.equal(m!.payload, 'kept');
      assert.equal(m!.retain, true);
    }
  });

  test('a shared subscription delivers each message once across the cluster', async (t) => {
    const [a, b, c] = await startNodes(t, redis.url, 3);
    const collectors: MessageCollector[] = [];
    for (const node of [a!, b!, c!]) {
      const sub = await connectMqtt(t, node.url, { clientId: clientId('g'), protocolVersion: 5 });
      collectors.push(new MessageCollector(sub));
      await sub.subscribeAsync('$share/grp/work/+', { qos: 1 });
    }
    const pub = await connectMqtt(t, b!.url, { clientId: clientId('p') });
    const n = 90;
    for (let i = 0; i < n; i++) await pub.publishAsync('work/x', String(i), { qos: 1 });
    const deadline = Date.now() + 5000;
    while (collectors.reduce((s, c) => s + c.count, 0) < n && Date.now() < deadline) await sleep(20);
    await sleep(200);
    const all = collectors.flatMap((c) => c.messages.map((m) => Number(m.payload))).sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => i), 'every message once');
    for (const c of collectors) assert.ok(c.count > 0, 'every node served some');
  });
});
