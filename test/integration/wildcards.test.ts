/**
 * Topic names, topic filters and wildcard matching [MQTT-4.7].
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { isMosquitto, startBroker } from '../helpers/broker.js';
import { clientId } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 10_000 };

/**
 * Subscribes one raw client to `filter`, publishes each topic (QoS 0) and then a
 * marker on `marker`, and returns the topics delivered before the marker.
 */
async function matched(
  t: TestContext,
  port: number,
  filter: string,
  topics: string[],
  marker: string,
  serverPublish?: (topic: string) => Promise<void>,
): Promise<string[]> {
  const sub = await RawClient.connected(port, t, { clientId: clientId('wc') });
  sub.send(P.subscribe(1, [{ filter, qos: 0 }, { filter: marker, qos: 0 }]));
  assert.deepEqual((await sub.expectPacket('suback')).granted, [0, 0]);
  const pub = await RawClient.connected(port, t, { clientId: clientId('wcpub') });
  for (const topic of topics) {
    if (serverPublish !== undefined && topic.startsWith('$')) await serverPublish(topic);
    else pub.send(P.publish({ topic, payload: topic }));
  }
  pub.send(P.publish({ topic: marker, payload: 'marker' }));
  const got: string[] = [];
  for (;;) {
    const m = await sub.expectPacket('publish');
    if (m.topic === marker) return got;
    got.push(m.topic);
  }
}

test("'+' matches exactly one level, including an empty level [MQTT-4.7.1-3]", T, async (t) => {
  const { port } = await startBroker(t);
  const got = await matched(t, port, 'sport/+/player', ['sport/tennis/player', 'sport//player', 'sport/tennis/x/player', 'sport/player', 'sport/tennis/players'], 'm/plus');
  assert.deepEqual(got, ['sport/tennis/player', 'sport//player']);
  const leading = await matched(t, port, '+/+', ['/finance', 'a/b', 'a', 'a/b/c'], 'm/plus2');
  assert.deepEqual(leading, ['/finance', 'a/b']);
});

test("'#' matches any number of levels, and 'sport/#' also matches 'sport' [MQTT-4.7.1-2]", T, async (t) => {
  const { port } = await startBroker(t);
  const got = await matched(t, port, 'sport/#', ['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1/ranking', 'sports', 'other/sport'], 'm/hash');
  assert.deepEqual(got, ['sport', 'sport/', 'sport/tennis', 'sport/tennis/player1/ranking']);
});

test("topics starting with '$' are not matched by filters starting with '#' or '+' but by an explicit '$' filter [MQTT-4.7.2-1]", T, async (t) => {
  const { port, broker } = await startBroker(t);
  // Tern refuses client PUBLISH to '$' topics (they are the server's), so under Tern the
  // '$' messages come from the broker itself; Mosquitto lets clients publish them.
  const server = broker !== undefined ? (topic: string) => broker.publish({ topic, payload: topic }) : undefined;
  const hash = await matched(t, port, '#', ['$internal/x', 'plain/x'], 'm/dollar1', server);
  assert.deepEqual(hash, ['plain/x']);
  const plus = await matched(t, port, '+/x', ['$internal/x', 'plain/x'], 'm/dollar2', server);
  assert.deepEqual(plus, ['plain/x']);
  const explicit = await matched(t, port, '$internal/#', ['$internal/x', 'plain/x'], 'm/dollar3', server);
  assert.deepEqual(explicit, ['$internal/x']);
});

test('PUBLISH to a topic name containing wildcards closes the connection [MQTT-3.3.2-2, MQTT-4.7.1-1]', T, async (t) => {
  const { port } = await startBroker(t);
  for (const topic of ['a/+/b', 'a/#', '#']) {
    const c = await RawClient.connected(port, t, { clientId: clientId('badtopic') });
    c.send(P.publish({ topic, payload: 'x', qos: 1, id: 1 }));
    const before = await c.expectClose();
    assert.ok(!before.some((p) => p.type === 'puback'), `no PUBACK for ${topic}`);
  }
});

test('PUBLISH to an empty topic name closes the connection [MQTT-4.7.3-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const c = await RawClient.connected(port, t, { clientId: clientId() });
  c.send(P.publish({ topic: '', payload: 'x', qos: 1, id: 1 }));
  const before = await c.expectClose();
  assert.ok(!before.some((p) => p.type === 'puback'));
});

test('overlapping subscriptions of one client deliver the message once, at the highest granted QoS [MQTT-3.3.5-1]', T, async (t) => {
  const { port } = await startBroker(t);
  const sub = await RawClient.connected(port, t, { clientId: clientId('overlap') });
  sub.send(P.subscribe(1, [{ filter: 'ov/+', qos: 0 }, { filter: 'ov/#', qos: 2 }, { filter: 'ov/a', qos: 1 }, { filter: 'marker/ov', qos: 0 }]));
  assert.deepEqual((await sub.expectPacket('suback')).granted, [0, 2, 1, 0]);
  const pub = await RawClient.connected(port, t, { clientId: clientId('pub') });
  pub.send(P.publish({ topic: 'ov/a', payload: 'once', qos: 2, id: 5 }));
  await pub.expectPacket('pubrec');
  pub.send(P.pubrel(5));
  await pub.expectPacket('pubcomp');
  pub.send(P.publish({ topic: 'marker/ov', payload: 'marker' }));

  const copies: P.PublishPacket[] = [];
  for (;;) {
    const p = await sub.next();
    if (p.type === 'pubrel') sub.send(P.pubcomp(p.id));
    if (p.type !== 'publish') continue;
    if (p.topic === 'marker/ov') break;
    copies.push(p);
    if (p.qos === 1) sub.send(P.puback(p.id ?? 0));
    if (p.qos === 2) sub.send(P.pubrec(p.id ?? 0));
  }
  assert.ok(copies.length >= 1, 'the message is delivered');
  if (!isMosquitto) {
    // Mosquitto 2.0.11 deviates here: it delivers one copy at the QoS of one
    // matching subscription (observed: QoS 1 from 'ov/a'), not at the maximum
    // QoS 2 of 'ov/#'. (3.1.1 would also allow extra copies, one per subscription.)
    assert.ok(copies.some((c) => c.qos === 2), `a copy at the maximum granted QoS 2, got QoS ${copies.map((c) => c.qos).join(',')}`);
    assert.equal(copies.length, 1, `delivered once, got QoS ${copies.map((c) => c.qos).join(',')}`);
  }
});
