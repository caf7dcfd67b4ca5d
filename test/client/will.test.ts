import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { collect } from './util.js';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.close();
});

async function watcher(topic: string, t: { after(fn: () => unknown): void }): Promise<MqttClient> {
  const client = new MqttClient({ host: broker.host, port: broker.port });
  t.after(() => client.destroy());
  await client.connect();
  await client.subscribe(topic, { qos: 1 });
  return client;
}

for (const level of [4, 5] as const) {
  test(`MQTT ${level}: the will is published when the client is destroyed [MQTT-3.1.2-8]`, { timeout: 5000 }, async (t) => {
    const topic = `will/destroy/${level}`;
    const watch = await watcher(topic, t);
    const client = new MqttClient({
      host: broker.host,
      port: broker.port,
      protocolLevel: level,
      will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
    });
    await client.connect();
    const got = collect(watch, 1);
    client.destroy();
    const [message] = await got;
    assert.equal(message?.payload.toString(), 'gone');
  });
}

test('end() sends DISCONNECT, so the will is discarded [MQTT-3.1.2-10]', { timeout: 5000 }, async (t) => {
  const topic = 'will/end';
  const watch = await watcher(topic, t);
  const client = new MqttClient({
    host: broker.host,
    port: broker.port,
    will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false },
  });
  await client.connect();
  const got = collect(watch, 1);
  await client.end();
  // A marker published afterwards must be the first message seen.
  const marker = new MqttClient({ host: broker.host, port: broker.port });
  t.after(() => marker.destroy());
  await marker.connect();
  await marker.publish(topic, 'marker', { qos: 1 });
  const [message] = await got;
  assert.equal(message?.payload.toString(), 'marker');
});
