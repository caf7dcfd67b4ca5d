/**
 * Shared-subscription strategies (mqtt.shared_subscription_strategy): which
 * member of a `$share/` group gets each message.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { MqttClient } from 'mqtt';
import { startBroker, TERN_ONLY } from '../helpers/broker.js';
import { connectMqtt } from '../helpers/mqtt-client.js';

const T = { timeout: 20_000, skip: TERN_ONLY };

/** Three members of group g on s/#; publishes `topics` and returns which member got each, in order. */
async function run(
  t: TestContext,
  strategy: 'round_robin' | 'sticky' | 'hash_client' | 'hash_topic',
  topics: string[],
  publishers = 1,
): Promise<string[]> {
  const { url } = await startBroker(t, { mqtt: { sharedSubscriptionStrategy: strategy } });
  const got = new Map<string, string>();
  const members: MqttClient[] = [];
  for (const name of ['m1', 'm2', 'm3']) {
    const m = await connectMqtt(t, url, { clientId: `${strategy}-${name}`, protocolVersion: 5 });
    m.on('message', (_topic, payload) => got.set(payload.toString(), name));
    await m.subscribeAsync('$share/g/s/#', { qos: 1 });
    members.push(m);
  }
  const pubs = await Promise.all(Array.from({ length: publishers }, (_, i) => connectMqtt(t, url, { clientId: `${strategy}-pub${i}` })));
  for (let i = 0; i < topics.length; i++) await pubs[i % publishers]!.publishAsync(topics[i]!, String(i), { qos: 1 });
  const deadline = Date.now() + 5000;
  while (got.size < topics.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.equal(got.size, topics.length, 'every message reached exactly one member');
  return topics.map((_, i) => got.get(String(i))!);
}

test('round_robin spreads messages over every member', T, async (t) => {
  const who = await run(t, 'round_robin', Array.from({ length: 9 }, () => 's/x'));
  assert.equal(new Set(who).size, 3);
});

test('sticky keeps giving messages to the same member while it is connected', T, async (t) => {
  const who = await run(t, 'sticky', Array.from({ length: 9 }, (_, i) => `s/${i}`));
  assert.equal(new Set(who).size, 1);
});

test('hash_topic sends a topic always to the same member', T, async (t) => {
  const topics = Array.from({ length: 12 }, (_, i) => `s/${i % 4}`);
  const who = await run(t, 'hash_topic', topics);
  for (let i = 4; i < topics.length; i++) assert.equal(who[i], who[i % 4], topics[i]);
});

test('hash_client sends a publisher always to the same member', T, async (t) => {
  const who = await run(t, 'hash_client', Array.from({ length: 12 }, (_, i) => `s/${i}`), 3);
  for (let i = 3; i < who.length; i++) assert.equal(who[i], who[i % 3], `publisher ${i % 3}`);
});
