import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import { isTernError } from '../../src/errors.js';
import { startFakeServer } from './fake-server.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { next } from './util.js';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.close();
});

test('an idle client sends PINGREQ within the keep-alive and mosquitto answers [MQTT-3.1.2-23]', { timeout: 5000 }, async (t) => {
  const client = new MqttClient({ host: broker.host, port: broker.port, keepalive: 1 });
  t.after(() => client.destroy());
  const started = Date.now();
  await client.connect();
  const [rtt] = await next(client, 'pingresp', 3000);
  assert.equal(typeof rtt, 'number');
  assert.ok(Date.now() - started <= 1500, 'the first PINGREQ goes out within one keep-alive period');
  assert.equal(client.connected, true);
});

test('a missing PINGRESP closes the connection with a keep-alive timeout', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 4, pingresp: false });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port, keepalive: 1, pingTimeoutMs: 200 });
  t.after(() => client.destroy());
  await client.connect();
  const [err] = await next(client, 'close', 3000);
  assert.ok(isTernError(err, 'ERR_MQTT_KEEPALIVE_TIMEOUT'), String(err));
  assert.ok(server.received.some((p) => p.cmd === 'pingreq'));
  assert.equal(client.closed, true);
});

test('a busy client sends no PINGREQ: traffic counts as keep-alive', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({ protocolVersion: 4 });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port, keepalive: 1 });
  t.after(() => client.destroy());
  await client.connect();
  // Publish every 100 ms for 1.2 s: longer than a keep-alive period, never idle for half of one.
  for (let i = 0; i < 12; i++) {
    await client.publish('busy', 'x');
    await new Promise((r) => setTimeout(r, 100));
  }
  await server.next('publish');
  assert.equal(server.received.filter((p) => p.cmd === 'pingreq').length, 0);
});
