/**
 * Slow consumers: a subscriber that stops reading its socket must not make the
 * broker buffer without bound, nor stall delivery to everybody else.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { clientId, connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const MESSAGES = 4000;
const BATCH = 50;
const PAYLOAD_BYTES = 8 * 1024;
const TOTAL_BYTES = MESSAGES * PAYLOAD_BYTES; // 32 MiB routed to the stalled subscriber
/** Allowed broker memory growth: a quarter of what was routed to the stalled client. */
const GROWTH_BOUND = TOTAL_BYTES / 4;

test('a subscriber that never reads does not grow broker memory without bound, and other clients keep being served', { timeout: 30_000 }, async (t) => {
  const started = await startBroker(t, { limits: { maxQueued: 100 } });
  const { port, url } = started;

  const slow = await RawClient.connected(port, t, { clientId: clientId('stalled') });
  slow.send(P.subscribe(1, [{ filter: 'flood/t', qos: 0 }]));
  await slow.expectPacket('suback');
  slow.pauseReading();

  const fast = await connectMqtt(t, url);
  const got = new MessageCollector(fast, { keep: false });
  await fast.subscribeAsync('flood/t', { qos: 0 });

  const pub = await connectMqtt(t, url);
  const baseline = await started.memoryUsage();
  const payload = Buffer.alloc(PAYLOAD_BYTES, 0x61);
  // Paced by the healthy subscriber (it must get every message while the other
  // is stalled), so any QoS 0 drops can only be at the stalled client.
  for (let i = 0; i < MESSAGES; i += BATCH) {
    for (let j = i; j < i + BATCH; j++) pub.publish('flood/t', payload, { qos: 0 });
    await got.waitForCount(i + BATCH, 5000);
  }
  const grown = (await started.memoryUsage()) - baseline;
  assert.ok(
    grown < GROWTH_BOUND,
    `broker memory grew by ${(grown / 2 ** 20).toFixed(1)} MiB for ${TOTAL_BYTES / 2 ** 20} MiB routed to a stalled client (bound ${GROWTH_BOUND / 2 ** 20} MiB)`,
  );

  // A brand-new client is still served promptly.
  const late = await RawClient.connected(port, t, { clientId: clientId('late') });
  late.send(P.pingreq());
  await late.expectPacket('pingresp');
  t.diagnostic(`memory growth ${(grown / 2 ** 20).toFixed(1)} MiB; stalled client ${slow.closed ? 'disconnected' : 'still connected'}`);
});
