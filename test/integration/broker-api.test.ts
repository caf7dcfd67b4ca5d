/**
 * Tern's in-process API seen from real clients: broker.publish() and the
 * notification events. Tern only (skipped under TERN_TEST_TARGET=mosquitto).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { startBroker, TERN_ONLY } from '../helpers/broker.js';
import type { TernBroker } from '../helpers/broker.js';
import { clientId, within } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000, skip: TERN_ONLY };

function tern(broker: TernBroker | undefined): TernBroker {
  assert.ok(broker !== undefined, 'in-process Tern broker');
  return broker;
}

test('broker.publish() delivers to subscribers at the requested QoS and stores retained messages', T, async (t) => {
  const started = await startBroker(t);
  const broker = tern(started.broker);
  const sub = await RawClient.connected(started.port, t, { clientId: clientId('api') });
  sub.send(P.subscribe(1, [{ filter: 'api/#', qos: 1 }]));
  await sub.expectPacket('suback');

  await broker.publish({ topic: 'api/live', payload: 'from-broker', qos: 1 });
  const m = await sub.expectPacket('publish');
  assert.deepEqual([m.topic, m.payload.toString(), m.qos, m.retain], ['api/live', 'from-broker', 1, false]);
  sub.send(P.puback(m.id ?? 0));

  await broker.publish({ topic: 'api/kept', payload: 'retained', retain: true });
  const later = await RawClient.connected(started.port, t, { clientId: clientId('api-late') });
  later.send(P.subscribe(1, [{ filter: 'api/kept', qos: 0 }]));
  await later.expectPacket('suback');
  const r = await later.expectPacket('publish');
  assert.deepEqual([r.payload.toString(), r.retain], ['retained', true]);
});

test("events 'clientConnected', 'subscribed', 'published' and 'clientDisconnected' carry the client id", T, async (t) => {
  const started = await startBroker(t);
  const broker = tern(started.broker);
  const id = clientId('events');

  const connectedEv = within(once(broker, 'clientConnected'), 3000, 'clientConnected');
  const c = await RawClient.connected(started.port, t, { clientId: id });
  assert.equal((await connectedEv)[0], id);

  const subscribedEv = within(once(broker, 'subscribed'), 3000, 'subscribed');
  c.send(P.subscribe(1, [{ filter: 'ev/t', qos: 1 }]));
  await c.expectPacket('suback');
  assert.equal((await subscribedEv)[0], id);

  const publishedEv = within(once(broker, 'published'), 3000, 'published');
  c.send(P.publish({ topic: 'ev/t', payload: 'x' }));
  const [message, from] = (await publishedEv) as [{ topic: string }, string | undefined];
  assert.equal(message.topic, 'ev/t');
  assert.equal(from, id);

  const disconnectedEv = within(once(broker, 'clientDisconnected'), 3000, 'clientDisconnected');
  c.send(P.disconnect());
  assert.equal((await disconnectedEv)[0], id);
});
