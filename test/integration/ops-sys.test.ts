/**
 * $SYS/broker/... topics with Mosquitto's names, published retained by the
 * broker every sys.interval seconds, only when a value changed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectMqtt, MessageCollector, type ReceivedMessage } from '../helpers/mqtt-client.js';
import { eventually, startOps } from '../http/ops-helpers.js';

const T = { timeout: 15_000 };

/** Latest value seen per topic. */
function latest(messages: readonly ReceivedMessage[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of messages) out.set(m.topic, m.payload);
  return out;
}

test('a subscriber to $SYS/# gets the retained broker figures with Mosquitto topic names', T, async (t) => {
  const { mqttUrl } = await startOps(t, { sys: { interval: 0.1 } });
  const pub = await connectMqtt(t, mqttUrl, { clientId: 'sys-pub' });
  await pub.subscribeAsync('x/#');
  await pub.publishAsync('x/1', 'a', { qos: 1, retain: true });
  await pub.publishAsync('x/2', 'b', { qos: 1 });
  const sub = await connectMqtt(t, mqttUrl, { clientId: 'sys-sub' });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('$SYS/#');
  // Wait for an update that reflects both clients and the two messages.
  const values = await eventually(() => {
    const v = latest(got.messages);
    return v.get('$SYS/broker/clients/connected') === '2' && v.get('$SYS/broker/publish/messages/received') !== undefined ? v : undefined;
  }, '$SYS update with two clients');
  assert.match(values.get('$SYS/broker/version') ?? '', /^tern version \d+\.\d+\.\d+/);
  assert.match(values.get('$SYS/broker/uptime') ?? '', /^\d+ seconds$/);
  assert.equal(values.get('$SYS/broker/clients/total'), '2');
  assert.equal(values.get('$SYS/broker/clients/disconnected'), '0');
  assert.equal(values.get('$SYS/broker/subscriptions/count'), '2');
  assert.ok(Number(values.get('$SYS/broker/messages/received')) >= 2);
  assert.ok(Number(values.get('$SYS/broker/retained messages/count')) >= 1);
  for (const w of ['1min', '5min', '15min']) {
    assert.match(values.get(`$SYS/broker/load/messages/received/${w}`) ?? '', /^\d+\.\d\d$/, w);
    assert.match(values.get(`$SYS/broker/load/connections/${w}`) ?? '', /^\d+\.\d\d$/, w);
  }
  // Retained: what arrived first came with the retain flag [MQTT-3.3.1-6].
  assert.equal(got.messages.find((m) => m.topic === '$SYS/broker/version')?.retain, true);
});

test('a figure is published again only when it changes', T, async (t) => {
  const { mqttUrl } = await startOps(t, { sys: { interval: 0.05 } });
  const sub = await connectMqtt(t, mqttUrl, { clientId: 'sys-watch' });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('$SYS/broker/clients/connected');
  await eventually(() => got.messages.some((m) => m.payload === '1'), 'clients/connected = 1');
  await connectMqtt(t, mqttUrl, { clientId: 'sys-second' });
  await eventually(() => got.messages.some((m) => m.payload === '2'), 'clients/connected = 2');
  await new Promise((r) => setTimeout(r, 300)); // several intervals with nothing changing
  // The retained value first ('0' or '1', depending on timing), then one message per change.
  const payloads = got.messages.map((m) => m.payload);
  assert.equal(got.messages[0]?.retain, true);
  assert.deepEqual(payloads.slice(-2), ['1', '2']);
  assert.ok(payloads.length <= 3 && new Set(payloads).size === payloads.length, `published: ${payloads.join(', ')}`);
});

test('sys.interval 0 publishes no $SYS topics', T, async (t) => {
  const { broker } = await startOps(t, { sys: { interval: 0 } });
  const stored = await broker.core.matchRetained('$SYS/#');
  assert.deepEqual(stored, []);
});
