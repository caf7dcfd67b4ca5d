/**
 * MqttClient `manualAcks` (the bridge's ack chain): an inbound QoS 1 message
 * is not acknowledged until ack() is called, so a broker redelivers it after
 * a reconnect [MQTT-4.4.0-1]; once acknowledged it is not redelivered.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import type { PublishPacket } from '../../src/codec/types.js';
import { startTern } from './helpers/brokers.js';
import { sleep } from './helpers/traffic.js';

it('holds the PUBACK of an inbound QoS 1 message until ack(), so the broker redelivers it', { timeout: 15_000 }, async (t) => {
  const broker = await startTern();
  t.after(() => broker.close());
  const got: PublishPacket[] = [];
  const make = (): MqttClient => {
    const c = new MqttClient({ host: broker.host, port: broker.port, clientId: 'manual', clean: false, manualAcks: true, protocolLevel: 5, properties: { sessionExpiryInterval: 60 } });
    c.on('message', (p) => got.push(p));
    return c;
  };
  let sub = make();
  await sub.connect();
  await sub.subscribe('m/#', { qos: 1 });
  const pub = new MqttClient({ host: broker.host, port: broker.port });
  await pub.connect();
  t.after(() => pub.end());
  await pub.publish('m/1', 'one', { qos: 1 });
  await pub.publish('m/2', 'two', { qos: 1 });
  while (got.length < 2) await sleep(10);
  sub.ack(got[1]!.packetId!, 1); // acknowledge only the second
  await sleep(100);
  sub.destroy();
  got.length = 0;
  sub = make();
  t.after(() => sub.end());
  await sub.connect();
  await sleep(300);
  assert.deepEqual(got.map((p) => p.payload.toString()), ['one'], 'only the unacknowledged message comes again');
  assert.equal(got[0]!.dup, true);
  sub.ack(got[0]!.packetId!, 1);
});
