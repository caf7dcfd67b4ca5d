import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import { startFakeServer, type FakeServer } from './fake-server.js';

/** Round trip through the client: everything it wrote before answering is on the server. */
async function sync(server: FakeServer, id: number): Promise<void> {
  server.send({ cmd: 'publish', topic: 'sync', payload: Buffer.alloc(0), qos: 1, messageId: id, retain: false, dup: false });
  for (;;) {
    const ack = await server.next('puback');
    if (ack.messageId === id) return;
  }
}

test('no more unacknowledged QoS 1 PUBLISH than the server Receive Maximum [MQTT-4.9.0-2]', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({
    protocolVersion: 5,
    connack: { cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { receiveMaximum: 2 } },
  });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port, protocolLevel: 5 });
  t.after(() => client.destroy());
  await client.connect();
  assert.equal(client.inflightLimit, 2);
  const sends = [1, 2, 3, 4, 5].map((i) => client.publish('win', String(i), { qos: 1 }));
  assert.equal(client.inflightCount, 2);
  assert.equal(client.queuedCount, 3);
  const first = await server.next('publish');
  const second = await server.next('publish');
  await sync(server, 100);
  assert.equal(server.received.filter((p) => p.cmd === 'publish').length, 2, 'the third waits for an ack');
  // Each PUBACK lets exactly one more through, in order.
  const payloads = [first, second].map((p) => (p.cmd === 'publish' ? p.payload.toString() : ''));
  let unacked = [first, second];
  while (unacked.length > 0) {
    const p = unacked.shift()!;
    server.send({ cmd: 'puback', messageId: p.messageId!, reasonCode: 0 });
    if (payloads.length < 5) {
      const more = await server.next('publish');
      payloads.push(more.cmd === 'publish' ? more.payload.toString() : '');
      unacked.push(more);
      await sync(server, 100 + payloads.length);
      assert.equal(server.received.filter((q) => q.cmd === 'publish').length, payloads.length);
    }
  }
  await Promise.all(sends);
  assert.deepEqual(payloads, ['1', '2', '3', '4', '5']);
  assert.equal(client.inflightCount, 0);
});

test('the own maxInflight caps the window below the server Receive Maximum', { timeout: 5000 }, async (t) => {
  const server = await startFakeServer({
    protocolVersion: 5,
    connack: { cmd: 'connack', reasonCode: 0, sessionPresent: false, properties: { receiveMaximum: 10 } },
  });
  t.after(() => server.close());
  const client = new MqttClient({ host: '127.0.0.1', port: server.port, protocolLevel: 5, maxInflight: 1 });
  t.after(() => client.destroy());
  await client.connect();
  assert.equal(client.inflightLimit, 1);
  void client.publish('cap', 'a', { qos: 2 }).catch(() => {});
  void client.publish('cap', 'b', { qos: 1 }).catch(() => {});
  assert.equal(client.inflightCount, 1);
  assert.equal(client.queuedCount, 1);
});
