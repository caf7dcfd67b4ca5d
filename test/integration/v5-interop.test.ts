/**
 * MQTT 5.0 with a real client (MQTT.js, protocolVersion 5) and interop with
 * MQTT 3.1.1 clients in both directions: request/response, properties end to
 * end, retained and will messages crossing protocol versions.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { MessageCollector, clientId, connectMqtt } from '../helpers/mqtt-client.js';
import { PacketCollector, connect5 } from '../conformance/helpers/mqtt5.js';

const T = { timeout: 10_000 };

suite('MQTT.js v5', { concurrency: 4 }, () => {
  test('request/response: response topic and correlation data reach the responder unchanged, and the reply reaches the requester [MQTT-3.3.2-15, MQTT-3.3.2-16]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: responder } = await connect5(t, url);
    const { client: requester } = await connect5(t, url);
    await responder.subscribeAsync('svc/echo', { qos: 1 });
    responder.on('message', (_topic, payload, packet) => {
      const props = packet.properties ?? {};
      if (props.responseTopic === undefined) return;
      responder.publish(props.responseTopic, Buffer.concat([Buffer.from('re:'), payload]), {
        qos: 1,
        properties: props.correlationData !== undefined ? { correlationData: props.correlationData } : {},
      });
    });
    const replies = new PacketCollector(requester);
    await requester.subscribeAsync('svc/reply/me', { qos: 1 });
    const corr = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
    await requester.publishAsync('svc/echo', 'hello', { qos: 1, properties: { responseTopic: 'svc/reply/me', correlationData: corr } });
    const [reply] = await replies.waitFor(1);
    assert.equal(reply!.payload.toString(), 're:hello');
    assert.deepEqual(reply!.properties?.correlationData, corr);
  });

  test('user properties, content type and payload format arrive as sent [MQTT-3.3.2-17, MQTT-3.3.2-20, MQTT-3.3.2-4]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: sub } = await connect5(t, url);
    const { client: pub } = await connect5(t, url);
    const got = new PacketCollector(sub);
    await sub.subscribeAsync('props/#', { qos: 1 });
    await pub.publishAsync('props/a', '{"x":1}', {
      qos: 1,
      properties: { userProperties: { region: 'eu', tags: ['a', 'b'] }, contentType: 'application/json', payloadFormatIndicator: true },
    });
    const [m] = await got.waitFor(1);
    assert.deepEqual({ ...m!.properties?.userProperties }, { region: 'eu', tags: ['a', 'b'] });
    assert.equal(m!.properties?.contentType, 'application/json');
    assert.equal(m!.properties?.payloadFormatIndicator, true);
  });

  test('subscription identifiers set with MQTT.js come back on delivery [MQTT-3.3.4-3]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client } = await connect5(t, url);
    const got = new PacketCollector(client);
    await client.subscribeAsync('sid/+', { qos: 1, properties: { subscriptionIdentifier: 12 } });
    await client.publishAsync('sid/x', 'm', { qos: 1 });
    const [m] = await got.waitFor(1);
    const ids = m!.properties?.subscriptionIdentifier;
    assert.deepEqual(Array.isArray(ids) ? ids : [ids], [12]);
  });

  test('MQTT.js automatic topic aliases are resolved by the broker [MQTT-3.3.2-12]', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: sub } = await connect5(t, url);
    const { client: pub, connack } = await connect5(t, url, { autoUseTopicAlias: true, autoAssignTopicAlias: true });
    assert.ok((connack.properties?.topicAliasMaximum ?? 0) > 0, 'the broker accepts topic aliases');
    const got = new MessageCollector(sub);
    await sub.subscribeAsync('alias/#', { qos: 1 });
    for (let i = 0; i < 5; i++) await pub.publishAsync('alias/some/long/topic', String(i), { qos: 1 });
    const msgs = await got.waitFor(5);
    assert.deepEqual(
      msgs.map((m) => [m.topic, m.payload]),
      [0, 1, 2, 3, 4].map((i) => ['alias/some/long/topic', String(i)]),
    );
  });

  test('MQTT.js v5 session expiry: a resumed session gets the messages queued while offline [MQTT-3.1.2-23, MQTT-3.2.2-3]', T, async (t) => {
    const { url } = await startBroker(t);
    const id = clientId('v5sess');
    const { client: first } = await connect5(t, url, { clientId: id, clean: true, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync('sess/t', { qos: 1 });
    await first.endAsync();
    const { client: pub } = await connect5(t, url);
    await pub.publishAsync('sess/t', 'while-away', { qos: 1 });
    let got: MessageCollector | undefined;
    const { connack } = await connect5(t, url, { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } }, (c) => {
      got = new MessageCollector(c);
    });
    assert.equal(connack.sessionPresent, true);
    assert.ok(got !== undefined);
    assert.equal((await got.waitFor(1))[0]!.payload, 'while-away');
  });
});

suite('v5 <-> v3.1.1 interop', { concurrency: 4 }, () => {
  test('a v5 publisher with properties reaches a v3.1.1 subscriber (properties dropped, topic/payload/QoS kept)', T, async (t) => {
    const { url } = await startBroker(t);
    const v4 = await connectMqtt(t, url);
    const got = new MessageCollector(v4);
    await v4.subscribeAsync('x5to4/#', { qos: 2 });
    const { client: v5 } = await connect5(t, url);
    await v5.publishAsync('x5to4/a', 'from-v5', {
      qos: 2,
      properties: { userProperties: { k: 'v' }, contentType: 'text/plain', messageExpiryInterval: 60, responseTopic: 'r', correlationData: Buffer.from('c') },
    });
    const [m] = await got.waitFor(1);
    assert.deepEqual([m!.topic, m!.payload, m!.qos], ['x5to4/a', 'from-v5', 2]);
  });

  test('a v3.1.1 publisher reaches a v5 subscriber with no message properties', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: v5 } = await connect5(t, url);
    const got = new PacketCollector(v5);
    await v5.subscribeAsync('x4to5/#', { qos: 1 });
    const v4 = await connectMqtt(t, url);
    await v4.publishAsync('x4to5/a', 'from-v4', { qos: 1 });
    const [m] = await got.waitFor(1);
    assert.equal(m!.payload.toString(), 'from-v4');
    const props = m!.properties ?? {};
    assert.equal(props.userProperties, undefined);
    assert.equal(props.contentType, undefined);
    assert.equal(props.messageExpiryInterval, undefined);
  });

  test('a retained v5 message with properties is served to later v3.1.1 and v5 subscribers', T, async (t) => {
    const { url } = await startBroker(t);
    const { client: pub } = await connect5(t, url);
    await pub.publishAsync('xr/t', 'kept', { qos: 1, retain: true, properties: { contentType: 'text/plain', userProperties: { a: '1' } } });
    const v4 = await connectMqtt(t, url);
    const got4 = new MessageCollector(v4);
    await v4.subscribeAsync('xr/t', { qos: 1 });
    const [m4] = await got4.waitFor(1);
    assert.deepEqual([m4!.payload, m4!.retain], ['kept', true]);
    const { client: v5 } = await connect5(t, url);
    const got5 = new PacketCollector(v5);
    await v5.subscribeAsync('xr/t', { qos: 1 });
    const [m5] = await got5.waitFor(1);
    assert.equal(m5!.retain, true);
    assert.equal(m5!.properties?.contentType, 'text/plain');
    assert.deepEqual({ ...m5!.properties?.userProperties }, { a: '1' });
  });

  test('a v5 will reaches a v3.1.1 subscriber, and a v3.1.1 will reaches a v5 subscriber', T, async (t) => {
    const { url } = await startBroker(t);
    const v4obs = await connectMqtt(t, url);
    const got4 = new MessageCollector(v4obs);
    await v4obs.subscribeAsync('xw/#', { qos: 1 });
    const { client: v5obs } = await connect5(t, url);
    const got5 = new PacketCollector(v5obs);
    await v5obs.subscribeAsync('xw/#', { qos: 1 });
    const { client: v5 } = await connect5(t, url, { will: { topic: 'xw/v5', payload: Buffer.from('v5-gone'), qos: 1, retain: false, properties: { contentType: 'x' } } });
    const v4 = await connectMqtt(t, url, { will: { topic: 'xw/v4', payload: Buffer.from('v4-gone'), qos: 1, retain: false } });
    v5.stream.destroy();
    v4.stream.destroy();
    const all4 = (await got4.waitFor(2)).map((m) => m.payload).sort();
    const all5 = (await got5.waitFor(2)).map((m) => m.payload.toString()).sort();
    assert.deepEqual(all4, ['v4-gone', 'v5-gone']);
    assert.deepEqual(all5, ['v4-gone', 'v5-gone']);
  });

  test('QoS is downgraded to the v3.1.1 subscription QoS for v5 publishes and vice versa [MQTT-3.8.4-8]', T, async (t) => {
    const { url } = await startBroker(t);
    const v4 = await connectMqtt(t, url);
    const got4 = new MessageCollector(v4);
    await v4.subscribeAsync('xq/4', { qos: 0 });
    const { client: v5 } = await connect5(t, url);
    const got5 = new PacketCollector(v5);
    await v5.subscribeAsync('xq/5', { qos: 1 });
    await v5.publishAsync('xq/4', 'a', { qos: 2 });
    await v4.publishAsync('xq/5', 'b', { qos: 2 });
    assert.equal((await got4.waitFor(1))[0]!.qos, 0);
    assert.equal((await got5.waitFor(1))[0]!.qos, 1);
  });
});
