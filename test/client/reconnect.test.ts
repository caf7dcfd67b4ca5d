import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reconnectDelay } from '../../src/client/backoff.js';
import { MqttClient } from '../../src/client/client.js';
import type { ConnackPacket } from '../../src/codec/types.js';
import { isTernError } from '../../src/errors.js';
import { startFakeServer } from './fake-server.js';
import { startMosquitto } from './mosquitto.js';
import { collect, next } from './util.js';

test('reconnect delays grow exponentially, are capped, and jitter only shortens them', () => {
  const r = { minDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 0.5 };
  assert.deepEqual(
    [0, 1, 2, 3, 4, 10].map((a) => reconnectDelay(a, r, () => 0)),
    [100, 200, 400, 800, 1000, 1000],
  );
  assert.equal(reconnectDelay(2, r, () => 1), 200);
  for (let i = 0; i < 100; i++) {
    const d = reconnectDelay(3, r);
    assert.ok(d >= 400 && d <= 800, String(d));
  }
});

test('after a broker restart the client resumes its persistent session and gets the message queued in it', { timeout: 15000 }, async (t) => {
  const broker = await startMosquitto(['persistence true', 'persistence_location $DIR/']);
  t.after(() => broker.close());
  const at = { host: broker.host, port: broker.port };
  // The subscriber comes back late (1.5 s, no jitter), the publisher early: the
  // message is published while the subscriber's session is offline.
  const sub = new MqttClient({
    ...at,
    protocolLevel: 5,
    clientId: 'restart-sub',
    clean: false,
    properties: { sessionExpiryInterval: 300 },
    reconnect: { minDelayMs: 1500, jitter: 0 },
  });
  t.after(() => sub.destroy());
  const pub = new MqttClient({ ...at, clientId: 'restart-pub', reconnect: { minDelayMs: 20, maxDelayMs: 100 } });
  t.after(() => pub.destroy());
  await sub.connect();
  await sub.subscribe('restart/t', { qos: 1 });
  await pub.connect();

  const subClosed = next(sub, 'close');
  const pubClosed = next(pub, 'close');
  await broker.stop();
  const [subErr] = await subClosed;
  await pubClosed;
  assert.ok(isTernError(subErr, 'ERR_CLIENT_CONNECTION_LOST'), String(subErr));
  assert.equal(sub.closed, false, 'a reconnecting client is not closed');

  const order: string[] = [];
  // Published while the broker is down: waits in the publisher's queue.
  const sent = pub.publish('restart/t', 'queued', { qos: 1 }).then(() => order.push('acked'));
  assert.equal(pub.queuedCount, 1);
  const subBack = next(sub, 'connect', 10000).then((args) => {
    order.push('sub reconnected');
    return args[0] as ConnackPacket;
  });
  const received = collect(sub, 1, 10000);
  await broker.start();
  const connack = await subBack;
  await sent;
  const [message] = await received;
  assert.equal(connack.sessionPresent, true, 'mosquitto restored the session from its persistence file');
  assert.deepEqual(order, ['acked', 'sub reconnected'], 'the broker held the message for the offline session');
  assert.equal(message?.payload.toString(), 'queued');
  await Promise.all([sub.end(), pub.end()]);
});

test('an ack timeout closes a half-open link; the PUBLISH is resent with DUP on reconnect [MQTT-4.4.0-1]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({
    protocolVersion: 4,
    connack: { cmd: 'connack', returnCode: 0, sessionPresent: true },
  });
  t.after(() => server.close());
  const client = new MqttClient({
    host: '127.0.0.1',
    port: server.port,
    clean: false,
    clientId: 'ack-timeout',
    ackTimeoutMs: 200,
    reconnect: { minDelayMs: 10 },
  });
  t.after(() => client.destroy());
  await client.connect();
  const closed = next(client, 'close');
  const sent = client.publish('half/open', 'x', { qos: 1 });
  const first = await server.next('publish');
  assert.ok(first.cmd === 'publish' && !first.dup);
  const [err] = await closed;
  assert.ok(isTernError(err, 'ERR_CLIENT_ACK_TIMEOUT'), String(err));
  await server.next('connect');
  const again = await server.next('publish');
  assert.ok(again.cmd === 'publish' && again.dup, 'resent with DUP set [MQTT-3.3.1-1]');
  assert.equal(again.messageId, first.messageId, 'with the original packet identifier');
  server.send({ cmd: 'puback', messageId: again.messageId! });
  await sent;
});

test('a QoS 2 flow past PUBREC resumes with PUBREL after a reconnect [MQTT-4.4.0-1]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({
    protocolVersion: 5,
    connack: { cmd: 'connack', reasonCode: 0, sessionPresent: true },
  });
  t.after(() => server.close());
  const client = new MqttClient({
    host: '127.0.0.1',
    port: server.port,
    protocolLevel: 5,
    clean: false,
    clientId: 'q2-resume',
    properties: { sessionExpiryInterval: 60 },
    reconnect: { minDelayMs: 10 },
  });
  t.after(() => client.destroy());
  await client.connect();
  const sent = client.publish('q2/resume', 'x', { qos: 2 });
  const publish = await server.next('publish');
  server.send({ cmd: 'pubrec', messageId: publish.messageId!, reasonCode: 0 });
  await server.next('pubrel');
  const closed = next(client, 'close');
  server.socket()?.destroy();
  await closed;
  await server.next('connect');
  const pubrel = await server.next('pubrel');
  assert.equal(pubrel.messageId, publish.messageId);
  assert.equal(server.received.filter((p) => p.cmd === 'publish').length, 1, 'the PUBLISH itself is not resent');
  server.send({ cmd: 'pubcomp', messageId: publish.messageId!, reasonCode: 0 });
  await sent;
});
