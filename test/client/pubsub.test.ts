import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import type { QoS } from '../../src/codec/types.js';
import { isTernError } from '../../src/errors.js';
import { startFakeServer } from './fake-server.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { collect } from './util.js';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.close();
});

async function connected(level: 4 | 5, t: { after(fn: () => unknown): void }): Promise<MqttClient> {
  const client = new MqttClient({ host: broker.host, port: broker.port, protocolLevel: level });
  t.after(() => client.destroy());
  await client.connect();
  return client;
}

for (const level of [4, 5] as const) {
  for (const qos of [0, 1, 2] as const) {
    test(`MQTT ${level}: a QoS ${qos} publish reaches a QoS ${qos} subscriber`, { timeout: 5000 }, async (t) => {
      const sub = await connected(level, t);
      const pub = await connected(level, t);
      const topic = `rt/${level}/${qos}`;
      assert.deepEqual(await sub.subscribe(topic, { qos }), [qos]);
      const got = collect(sub, 1);
      await pub.publish(topic, `hello ${qos}`, { qos });
      const [message] = await got;
      assert.equal(message?.topic, topic);
      assert.equal(message?.payload.toString(), `hello ${qos}`);
      assert.equal(message?.qos, qos);
      assert.equal(pub.inflightCount, 0);
    });
  }
}

test('1000 QoS 1 messages arrive in publish order [MQTT-4.6.0-6]', { timeout: 10000 }, async (t) => {
  const sub = await connected(5, t);
  const pub = await connected(5, t);
  await sub.subscribe('order/1', { qos: 1 });
  const got = collect(sub, 1000);
  const sends: Array<Promise<void>> = [];
  for (let i = 0; i < 1000; i++) sends.push(pub.publish('order/1', String(i), { qos: 1 as QoS }));
  await Promise.all(sends);
  const messages = await got;
  assert.deepEqual(
    messages.map((m) => Number(m.payload.toString())),
    Array.from({ length: 1000 }, (_, i) => i),
  );
});

test('publishWithCallback calls back once per message after the PUBACK', { timeout: 5000 }, async (t) => {
  const sub = await connected(4, t);
  const pub = await connected(4, t);
  await sub.subscribe('cb/1', { qos: 1 });
  const got = collect(sub, 100);
  let acked = 0;
  const done = new Promise<void>((resolve, reject) => {
    const cb = (err: Error | null): void => {
      if (err !== null) reject(err);
      else if (++acked === 100) resolve();
    };
    for (let i = 0; i < 100; i++) pub.publishWithCallback('cb/1', Buffer.from([i]), 1, false, undefined, cb);
  });
  await done;
  assert.equal((await got).length, 100);
});

test('after unsubscribe no more messages arrive on that filter', { timeout: 5000 }, async (t) => {
  const sub = await connected(5, t);
  const pub = await connected(5, t);
  await sub.subscribe(['unsub/a', 'unsub/b'], { qos: 1 });
  assert.deepEqual(await sub.unsubscribe('unsub/a'), [0]);
  const got = collect(sub, 1);
  await pub.publish('unsub/a', 'dropped', { qos: 1 });
  await pub.publish('unsub/b', 'kept', { qos: 1 });
  const [message] = await got;
  assert.equal(message?.topic, 'unsub/b');
});

test('SUBACK return codes come back one per filter, failures included [MQTT-3.9.3-1]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 4 });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port });
  t.after(() => client.destroy());
  await client.connect();
  const granted = client.subscribe([{ filter: 'ok/1', qos: 2 }, 'denied/1'], { qos: 1 });
  const subscribe = await server.next('subscribe');
  assert.ok(subscribe.cmd === 'subscribe');
  assert.deepEqual(
    subscribe.subscriptions.map((s) => [s.topic, s.qos]),
    [
      ['ok/1', 2],
      ['denied/1', 1],
    ],
  );
  server.send({ cmd: 'suback', messageId: subscribe.messageId!, granted: [1, 0x80] });
  assert.deepEqual(await granted, [1, 0x80]);
});

test('QoS 2 duplicates are not re-emitted until PUBREL releases the id [MQTT-4.3.3-10]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 4 });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port });
  t.after(() => client.destroy());
  const seen: string[] = [];
  client.on('message', (p) => seen.push(p.payload.toString()));
  await client.connect();
  const publish = { cmd: 'publish', topic: 'q2', qos: 2, messageId: 7, retain: false } as const;
  server.send({ ...publish, payload: Buffer.from('first'), dup: false });
  await server.next('pubrec');
  server.send({ ...publish, payload: Buffer.from('first'), dup: true });
  await server.next('pubrec');
  server.send({ cmd: 'pubrel', messageId: 7 });
  assert.equal((await server.next('pubcomp')).messageId, 7);
  // The id is free again: a new PUBLISH with it is a new message.
  server.send({ ...publish, payload: Buffer.from('second'), dup: false });
  await server.next('pubrec');
  assert.deepEqual(seen, ['first', 'second']);
});

test('a v5 PUBACK with a failure reason rejects the publish', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 5 });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port, protocolLevel: 5 });
  t.after(() => client.destroy());
  await client.connect();
  const sent = client.publish('denied', 'x', { qos: 1 });
  const publish = await server.next('publish');
  server.send({ cmd: 'puback', messageId: publish.messageId!, reasonCode: 0x87 });
  await assert.rejects(sent, (err) => isTernError(err, 'ERR_CLIENT_REJECTED') && err.reasonCode === 0x87);
  assert.equal(client.inflightCount, 0);
});

test('publishing after end() rejects with ERR_CLIENT_CLOSED', { timeout: 5000 }, async (t) => {
  const client = await connected(4, t);
  await client.end();
  await assert.rejects(client.publish('x', 'y', { qos: 1 }), (err) => isTernError(err, 'ERR_CLIENT_CLOSED'));
});
