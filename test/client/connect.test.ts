import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import { isTernError } from '../../src/errors.js';
import { startFakeServer } from './fake-server.js';
import { freePort, startMosquitto, type Mosquitto } from './mosquitto.js';
import { next } from './util.js';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.close();
});

for (const level of [4, 5] as const) {
  test(`connects to mosquitto with MQTT level ${level} and gets an accepted CONNACK`, { timeout: 5000 }, async (t) => {
    const client = new MqttClient({ host: broker.host, port: broker.port, protocolLevel: level });
    t.after(() => client.destroy());
    const connected = next(client, 'connect');
    const connack = await client.connect();
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.sessionPresent, false);
    assert.equal(client.connected, true);
    assert.deepEqual((await connected)[0], connack);
    await client.end();
    assert.equal(client.closed, true);
  });
}

test('a persistent session is present on the second connect [MQTT-3.2.2-2]', { timeout: 5000 }, async (t) => {
  const opts = { host: broker.host, port: broker.port, clientId: 'tern-persist-1', clean: false, keepalive: 10 };
  const first = new MqttClient(opts);
  t.after(() => first.destroy());
  assert.equal((await first.connect()).sessionPresent, false);
  await first.end();
  const second = new MqttClient(opts);
  t.after(() => second.destroy());
  assert.equal((await second.connect()).sessionPresent, true);
  await second.end();
});

test('an empty v5 client id is replaced by the one the server assigns', { timeout: 5000 }, async (t) => {
  const client = new MqttClient({ host: broker.host, port: broker.port, protocolLevel: 5, clientId: '' });
  t.after(() => client.destroy());
  const connack = await client.connect();
  const assigned = connack.properties?.assignedClientIdentifier;
  assert.ok(assigned !== undefined && assigned.length > 0, 'mosquitto assigns an id to an empty v5 client id');
  assert.equal(client.clientId, assigned);
  await client.end();
});

test('a failed first connect rejects and does not retry even with reconnect on', { timeout: 5000 }, async (t) => {
  const port = await freePort();
  const client = new MqttClient({ host: '127.0.0.1', port, reconnect: { minDelayMs: 10 } });
  t.after(() => client.destroy());
  let reconnects = 0;
  client.on('reconnect', () => reconnects++);
  await assert.rejects(client.connect(), (err) => isTernError(err, 'ERR_CLIENT_CONNECTION_LOST'));
  assert.equal(client.closed, true);
  assert.equal(reconnects, 0);
});

test('a refusing CONNACK rejects connect() with its return code', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({
    protocolVersion: 4,
    connack: { cmd: 'connack', returnCode: 5, sessionPresent: false },
  });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port });
  t.after(() => client.destroy());
  await assert.rejects(client.connect(), (err) => isTernError(err, 'ERR_CLIENT_CONNECT_REFUSED') && err.reasonCode === 5);
});

test('CONNECT carries the options and end() sends DISCONNECT [MQTT-3.14.4-1]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 5 });
  t.after(() => server.close());
  const client = new MqttClient({
    host: '127.0.0.1',
    port: server.port,
    protocolLevel: 5,
    clientId: 'opts-1',
    clean: false,
    keepalive: 42,
    username: 'u',
    password: 'p',
    will: { topic: 'w/t', payload: Buffer.from('bye'), qos: 1, retain: false },
    properties: { sessionExpiryInterval: 60 },
  });
  t.after(() => client.destroy());
  await client.connect();
  const connect = server.received[0];
  assert.ok(connect !== undefined && connect.cmd === 'connect');
  assert.equal(connect.protocolVersion, 5);
  assert.equal(connect.clientId, 'opts-1');
  assert.equal(connect.clean, false);
  assert.equal(connect.keepalive, 42);
  assert.equal(connect.username, 'u');
  assert.equal(connect.password?.toString(), 'p');
  assert.equal(connect.will?.topic, 'w/t');
  assert.equal(connect.properties?.sessionExpiryInterval, 60);
  const disconnect = server.next('disconnect');
  await client.end();
  await disconnect;
});

test('a connect that gets no CONNACK times out', { timeout: 5000 }, async (t) => {
  const { createServer } = await import('node:net');
  const silent = createServer(() => {});
  silent.listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  t.after(() => silent.close());
  const address = silent.address();
  assert.ok(address !== null && typeof address === 'object');
  const client = new MqttClient({ host: '127.0.0.1', port: address.port, connectTimeoutMs: 200 });
  t.after(() => client.destroy());
  await assert.rejects(client.connect(), (err) => isTernError(err, 'ERR_CLIENT_CONNECT_TIMEOUT'));
});
