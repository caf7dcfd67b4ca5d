/**
 * MQTT 5.0 wills [MQTT 5.0 §3.1.2.5, §3.1.3.2]: will delay interval, session
 * end, DISCONNECT 0x00 / 0x04, will properties.
 */
import assert from 'node:assert/strict';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { startBroker } from '../helpers/broker.js';
import { Client5, Prop, RC, cid, disconnect, elapse, type PropList } from './helpers/v5.js';

const T = { timeout: 10_000 };

/** A v5 observer subscribed to `filter` at QoS 1. */
async function observer(t: TestContext, port: number, filter: string): Promise<Client5> {
  const c = await Client5.connected(port, t);
  await c.sub(1, [{ filter, qos: 1 }]);
  return c;
}

/** A v5 client with a will on `topic` (QoS 1) and the given CONNECT / will properties. */
async function willClient(t: TestContext, port: number, topic: string, o: { id?: string; session?: number; will?: PropList; retain?: boolean } = {}): Promise<Client5> {
  return Client5.connected(port, t, {
    clientId: o.id ?? cid('will'),
    properties: o.session !== undefined ? [[Prop.SESSION_EXPIRY_INTERVAL, o.session]] : [],
    will: { topic, payload: 'gone', qos: 1, retain: o.retain ?? false, properties: o.will ?? [] },
  });
}

suite('will messages (v5)', { concurrency: 4 }, () => {
  test('a will with a delay is kept with the session and published once the delay passed [MQTT-3.1.2-7, MQTT-3.1.2-8]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wd/t');
    const c = await willClient(t, port, 'wd/t', { session: 30, will: [[Prop.WILL_DELAY_INTERVAL, 1]] });
    const closedAt = Date.now();
    c.close();
    await obs.expectNoPacket(600);
    const m = await obs.receive(3000);
    const after = Date.now() - closedAt;
    assert.equal(m.payload.toString(), 'gone');
    assert.ok(after >= 900, `published ${after} ms after the close`);
    assert.equal(m.props.has(Prop.WILL_DELAY_INTERVAL), false, 'the will delay is not forwarded');
  });

  test('reconnecting before the will delay passes cancels the will [MQTT-3.1.3-9, MQTT-3.1.2-8]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wc/t');
    const id = cid('will');
    const c = await willClient(t, port, 'wc/t', { id, session: 30, will: [[Prop.WILL_DELAY_INTERVAL, 1]] });
    c.close();
    await c.expectClose();
    await elapse(300);
    const back = await Client5.connected(port, t, { clientId: id, clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    await obs.expectNoPacket(1500);
    assert.equal(back.closed, false);
  });

  test('a will whose delay is longer than the session expiry goes out when the session ends [MQTT-3.1.2-8]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'ws/t');
    const c = await willClient(t, port, 'ws/t', { session: 1, will: [[Prop.WILL_DELAY_INTERVAL, 30]] });
    const closedAt = Date.now();
    c.close();
    const m = await obs.receive(4000);
    const after = Date.now() - closedAt;
    assert.equal(m.payload.toString(), 'gone');
    assert.ok(after >= 800 && after < 3500, `published ${after} ms after the close (session expiry 1 s)`);
  });

  test('session expiry 0: a delayed will goes out as soon as the connection closes [MQTT-3.1.2-8]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'w0/t');
    const c = await willClient(t, port, 'w0/t', { will: [[Prop.WILL_DELAY_INTERVAL, 30]] });
    c.close();
    assert.equal((await obs.receive(1500)).payload.toString(), 'gone');
  });

  test('reconnecting with clean start 1 inside the will delay ends the old session, so the will goes out [MQTT-3.1.2-8, MQTT-3.1.2-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wn/t');
    const id = cid('will');
    const c = await willClient(t, port, 'wn/t', { id, session: 30, will: [[Prop.WILL_DELAY_INTERVAL, 30]] });
    c.close();
    await c.expectClose();
    await obs.expectNoPacket(200);
    await Client5.connected(port, t, { clientId: id, clean: true });
    assert.equal((await obs.receive(1500)).payload.toString(), 'gone');
  });

  test('DISCONNECT 0x00 discards the will [MQTT-3.14.4-3, MQTT-3.1.2-10]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wx/t');
    const c = await willClient(t, port, 'wx/t');
    c.send(disconnect(RC.SUCCESS));
    await c.expectClose();
    await obs.expectNoPacket(500);
  });

  test('DISCONNECT 0x04 (disconnect with will message) publishes the will [MQTT 5.0 §3.14.2.1]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'w4/t');
    const c = await willClient(t, port, 'w4/t');
    c.send(disconnect(RC.DISCONNECT_WITH_WILL));
    await c.expectClose();
    assert.equal((await obs.receive(1500)).payload.toString(), 'gone');
  });

  test('DISCONNECT 0x04 with a will delay still waits for the delay [MQTT-3.1.2-8]', { timeout: 15_000 }, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'w4d/t');
    const c = await willClient(t, port, 'w4d/t', { session: 30, will: [[Prop.WILL_DELAY_INTERVAL, 1]] });
    c.send(disconnect(RC.DISCONNECT_WITH_WILL));
    await c.expectClose();
    await obs.expectNoPacket(500);
    assert.equal((await obs.receive(3000)).payload.toString(), 'gone');
  });

  test('will properties are forwarded: payload format, content type, response topic, correlation data, user properties, message expiry, in order [MQTT-3.1.3-10, MQTT-3.3.2-4]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wp/t');
    const c = await willClient(t, port, 'wp/t', {
      will: [
        [Prop.PAYLOAD_FORMAT_INDICATOR, 1],
        [Prop.MESSAGE_EXPIRY_INTERVAL, 60],
        [Prop.CONTENT_TYPE, 'text/plain'],
        [Prop.RESPONSE_TOPIC, 'wp/reply'],
        [Prop.CORRELATION_DATA, Buffer.from([1, 2, 3])],
        [Prop.USER_PROPERTY, ['z', '1']],
        [Prop.USER_PROPERTY, ['a', '2']],
        [Prop.USER_PROPERTY, ['z', '1']],
      ],
    });
    c.close();
    const m = await obs.receive();
    assert.equal(m.props.num(Prop.PAYLOAD_FORMAT_INDICATOR), 1);
    const exp = m.props.num(Prop.MESSAGE_EXPIRY_INTERVAL);
    assert.ok(exp !== undefined && exp <= 60 && exp >= 59);
    assert.equal(m.props.str(Prop.CONTENT_TYPE), 'text/plain');
    assert.equal(m.props.str(Prop.RESPONSE_TOPIC), 'wp/reply');
    assert.deepEqual(m.props.get(Prop.CORRELATION_DATA), Buffer.from([1, 2, 3]));
    assert.deepEqual(m.props.all(Prop.USER_PROPERTY), [
      ['z', '1'],
      ['a', '2'],
      ['z', '1'],
    ]);
  });

  test('a will with Will Retain 1 is published retained; with 0 not retained [MQTT-3.1.2-14, MQTT-3.1.2-15]', T, async (t) => {
    const { port } = await startBroker(t);
    const r = await willClient(t, port, 'wr/retained', { retain: true });
    const n = await willClient(t, port, 'wr/plain');
    r.close();
    n.close();
    await r.expectClose();
    await n.expectClose();
    await elapse(200);
    const late = await Client5.connected(port, t);
    await late.sub(1, [{ filter: 'wr/#', qos: 1 }]);
    const m = await late.receive();
    assert.deepEqual([m.topic, m.retain], ['wr/retained', true]);
    assert.deepEqual(await late.sync(), []);
  });

  test('a taken-over connection publishes its will when it has no delay [MQTT-3.1.4-3, MQTT-3.1.2-8]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wt/t');
    const id = cid('will');
    const c = await willClient(t, port, 'wt/t', { id, session: 30 });
    await Client5.connected(port, t, { clientId: id, clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    assert.equal((await c.expectDisconnect()).reasonCode, RC.SESSION_TAKEN_OVER);
    assert.equal((await obs.receive()).payload.toString(), 'gone');
  });

  test('a taken-over connection with a will delay does not publish its will when the session is resumed [MQTT-3.1.3-9]', T, async (t) => {
    const { port } = await startBroker(t);
    const obs = await observer(t, port, 'wtd/t');
    const id = cid('will');
    const c = await willClient(t, port, 'wtd/t', { id, session: 30, will: [[Prop.WILL_DELAY_INTERVAL, 1]] });
    await Client5.connected(port, t, { clientId: id, clean: false, properties: [[Prop.SESSION_EXPIRY_INTERVAL, 30]] });
    await c.expectDisconnect();
    await obs.expectNoPacket(1600);
  });
});
