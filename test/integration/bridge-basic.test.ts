/**
 * The bridge against real brokers (Tern local, Mosquitto remote, a fault
 * proxy between bridge and remote): mapping, state topic, the cache while
 * the remote is down, both overflow policies, a corrupt cache, the lock,
 * the in-process local side, drops by reason.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createBridge } from '../../src/bridge/bridge.js';
import { MqttClient } from '../../src/client/client.js';
import type { PublishPacket } from '../../src/codec/types.js';
import { isTernError } from '../../src/errors.js';
import { startMosquitto, startTern } from '../bridge/helpers/brokers.js';
import { once, scenario, STATE_TOPIC } from '../bridge/helpers/setup.js';
import { checkDelivery, Collector, Publisher, sleep } from '../bridge/helpers/traffic.js';

describe('bridge: mapping and state', { timeout: 30_000 }, () => {
  it('forwards with the prefix, subscribes with the strip, keeps retain flags, never echoes, and keeps the state topic right', async (t) => {
    const s = await scenario(t);
    const bridge = s.bridge({
      forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/', qos: 1 }],
      subscribe: [{ remote: 'devices/edge1/cmd/#', stripPrefix: 'devices/edge1/', qos: 1 }],
    });
    await bridge.start();
    await s.collector.until(() => s.collector.retained.get(STATE_TOPIC) === 'online', 5000);
    assert.equal(s.collector.retained.get(STATE_TOPIC), 'online');
    await s.collector.until(() => bridge.stats().local.state === 'up', 5000);
    assert.equal(bridge.stats().local.protocolLevel, 5, 'MQTT 5 towards a local broker that speaks it');

    // Local side: a subscriber to the stripped command topic, and one to sensors (to spot echoes).
    const localSub = new MqttClient({ host: s.local.host, port: s.local.port, protocolLevel: 5 });
    const localGot: PublishPacket[] = [];
    localSub.on('message', (p) => localGot.push(p));
    await localSub.connect();
    t.after(() => localSub.end());
    await localSub.subscribe([{ filter: 'cmd/#', qos: 1 }, { filter: 'sensors/#', qos: 1 }]);

    const pub = new Publisher(s.local, 'sensors/temp');
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(200);
    await pub.client.publish('sensors/retained', 'kept', { qos: 1, retain: true });
    assert.ok(await s.collector.until(() => s.collector.received.length >= 200, 10_000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0 });

    // The retained flag arrived as published: a new subscriber at the remote gets it from the store.
    const late = new MqttClient({ host: s.remote.host, port: s.remote.port });
    const lateGot: PublishPacket[] = [];
    late.on('message', (p) => lateGot.push(p));
    await late.connect();
    t.after(() => late.end());
    await late.subscribe('devices/edge1/sensors/retained', { qos: 1 });
    assert.ok(await s.collector.until(() => lateGot.length > 0, 5000));
    assert.equal(lateGot[0]!.retain, true);
    assert.equal(lateGot[0]!.payload.toString(), 'kept');

    // Remote -> local with the prefix stripped.
    const remotePub = new MqttClient({ host: s.remote.host, port: s.remote.port });
    await remotePub.connect();
    t.after(() => remotePub.end());
    await remotePub.publish('devices/edge1/cmd/reboot', 'now', { qos: 1 });
    assert.ok(await s.collector.until(() => localGot.some((p) => p.topic === 'cmd/reboot'), 5000));
    // No echo: the command was not forwarded back, and each sensor message reached the local subscriber once.
    await sleep(200);
    assert.equal(localGot.filter((p) => p.topic === 'cmd/reboot').length, 1);
    assert.equal(s.collector.received.length, 200);
    assert.equal(bridge.stats().delivered, 1);

    // The remote forgets the session on every clean reconnect: the bridge subscribes again.
    const up = once(bridge, 'remoteUp');
    s.proxy.drop();
    const [sessionPresent] = await up;
    assert.equal(sessionPresent, false);
    await sleep(200);
    await remotePub.publish('devices/edge1/cmd/again', 'now', { qos: 1 });
    assert.ok(await s.collector.until(() => localGot.some((p) => p.topic === 'cmd/again'), 5000), 'resubscribed');

    await bridge.close();
    assert.ok(await s.collector.until(() => s.collector.retained.get(STATE_TOPIC) === 'offline', 5000), 'offline after a clean shutdown');
  });

  it('speaks MQTT 3.1.1 to the remote when configured', async (t) => {
    const s = await scenario(t);
    const bridge = s.bridge({ remote: { host: '127.0.0.1', protocolVersion: '3.1.1' } });
    await bridge.start();
    await once(bridge, 'remoteUp');
    assert.equal(bridge.stats().remote.protocolLevel, 4);
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(100);
    assert.ok(await s.collector.until(() => s.collector.received.length >= 100, 5000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0 });
  });
});

describe('bridge: cache', { timeout: 40_000 }, () => {
  for (const remoteKind of ['mosquitto', 'tern'] as const) {
    it(`caches while the remote (${remoteKind}) is down at start, then replays in order and reports a drain`, async (t) => {
      const s = await scenario(t, { remote: remoteKind });
      s.proxy.refuse();
      const bridge = s.bridge();
      await bridge.start();
      const pub = new Publisher(s.local);
      await pub.connect();
      t.after(() => pub.close());
      await pub.burst(3000);
      await s.collector.until(() => bridge.stats().backlog.messages === 3000, 5000);
      const st = bridge.stats();
      assert.equal(st.backlog.messages, 3000);
      assert.ok(st.backlog.bytes > 0);
      assert.equal(st.remote.state, 'down');
      assert.notEqual(s.collector.retained.get(STATE_TOPIC), 'online');
      const drained = once(bridge, 'drained', 10_000);
      s.proxy.pass();
      await drained;
      assert.ok(await s.collector.until(() => s.collector.received.length >= 3000, 5000));
      checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0 });
      // Rows are deleted once acknowledged: the cache empties.
      await s.collector.until(() => bridge.stats().backlog.messages === 0, 5000);
      assert.equal(bridge.stats().backlog.messages, 0);
      assert.ok(await s.collector.until(() => s.collector.retained.get(STATE_TOPIC) === 'online', 2000));
    });
  }

  for (const overflow of ['drop_oldest', 'reject_new'] as const) {
    it(`${overflow}: keeps the cache at its limit and counts every drop`, async (t) => {
      const s = await scenario(t);
      s.proxy.refuse();
      const bridge = s.bridge({ cache: { maxMessages: 500, overflow } });
      await bridge.start();
      const pub = new Publisher(s.local);
      await pub.connect();
      t.after(() => pub.close());
      await pub.burst(800);
      const reason = overflow === 'drop_oldest' ? 'evicted' : 'rejected';
      await s.collector.until(() => bridge.stats().drops[reason] === 300, 5000);
      const st = bridge.stats();
      assert.equal(st.drops[reason], 300);
      assert.equal(st.backlog.messages, 500);
      s.proxy.pass();
      assert.ok(await s.collector.until(() => s.collector.received.length >= 500, 10_000));
      await sleep(100);
      assert.equal(s.collector.received.length, 500);
      // Which 500 survive is the policy: the newest for drop_oldest, the oldest for reject_new.
      const expected = overflow === 'drop_oldest' ? pub.acked.filter((n) => n >= 300) : pub.acked.filter((n) => n < 500);
      checkDelivery(expected, s.collector.received, { maxDuplicates: 0 });
    });
  }

  it('drops QoS 0 messages while the remote is unreachable and counts them', async (t) => {
    const s = await scenario(t);
    s.proxy.refuse();
    const bridge = s.bridge({ forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/', qos: 0 }] });
    await bridge.start();
    await once(bridge, 'localUp');
    const pub = new MqttClient({ host: s.local.host, port: s.local.port });
    await pub.connect();
    t.after(() => pub.end());
    for (let i = 0; i < 50; i++) await pub.publish('sensors/q0', String(i));
    await s.collector.until(() => bridge.stats().drops.qos0_offline === 50, 5000);
    assert.equal(bridge.stats().drops.qos0_offline, 50);
    assert.equal(bridge.stats().backlog.messages, 0);
  });

  it('moves a corrupt cache aside with a clear error and starts fresh', async (t) => {
    const s = await scenario(t);
    const file = join(s.dir, 'bridge-edge1.db');
    writeFileSync(file, Buffer.alloc(8192, 0x41));
    const bridge = s.bridge();
    const errors: Error[] = [];
    bridge.on('error', (e) => errors.push(e));
    const reset = once<[string, string]>(bridge, 'cacheReset');
    await bridge.start();
    const [, movedTo] = await reset;
    assert.ok(existsSync(movedTo), 'the corrupt file is kept');
    assert.ok(readdirSync(s.dir).some((f) => f.startsWith('bridge-edge1.db.corrupt-')));
    assert.ok(errors.some((e) => isTernError(e, 'ERR_STORAGE_CORRUPT') && e.message.includes(movedTo)));
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(100);
    assert.ok(await s.collector.until(() => s.collector.received.length >= 100, 5000));
  });

  it('refuses a second bridge on the same cache', async (t) => {
    const s = await scenario(t);
    await s.bridge().start();
    await assert.rejects(s.bridge().start(), (err: unknown) => isTernError(err, 'ERR_STORAGE_LOCKED'));
  });
});

describe('bridge: local side', { timeout: 30_000 }, () => {
  it('runs inside a Tern broker (in-process local side) in both directions', async (t) => {
    const broker = await startTern();
    t.after(() => broker.close());
    const remote = await startMosquitto();
    t.after(() => remote.close());
    const collector = new Collector(remote, 'devices/#');
    await collector.connect();
    t.after(() => collector.close());
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const bridge = createBridge({
      name: 'inproc',
      broker: broker.broker!,
      remote: { host: remote.host, port: remote.port },
      cache: { dir, durability: 'normal' },
      forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }],
      subscribe: [{ remote: 'devices/edge1/cmd/#', stripPrefix: 'devices/edge1/' }],
    });
    t.after(() => bridge.close());
    await bridge.start();
    await once(bridge, 'remoteUp');
    const pub = new Publisher(broker);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(500);
    assert.ok(await collector.until(() => collector.received.length >= 500, 5000));
    checkDelivery(pub.acked, collector.received, { maxDuplicates: 0 });
    const localSub = new MqttClient({ host: broker.host, port: broker.port });
    const got: string[] = [];
    localSub.on('message', (p) => got.push(p.topic));
    await localSub.connect();
    t.after(() => localSub.end());
    await localSub.subscribe('#', { qos: 1 });
    const remotePub = new MqttClient({ host: remote.host, port: remote.port });
    await remotePub.connect();
    t.after(() => remotePub.end());
    await sleep(100);
    await remotePub.publish('devices/edge1/cmd/x', 'go', { qos: 1 });
    assert.ok(await collector.until(() => got.includes('cmd/x'), 5000));
    await sleep(100);
    assert.equal(collector.received.length, 500, 'nothing echoed back');
  });

  it('falls back to MQTT 3.1.1 towards a local broker that refuses MQTT 5', async (t) => {
    const local = await startMosquitto();
    t.after(() => local.close());
    const remote = await startMosquitto();
    t.after(() => remote.close());
    const { FaultProxy } = await import('../bridge/helpers/fault-proxy.js');
    const old = await FaultProxy.start(local.host, local.port);
    old.v311Only = true;
    t.after(() => old.close());
    const collector = new Collector(remote, 'devices/#');
    await collector.connect();
    t.after(() => collector.close());
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const bridge = createBridge({
      name: 'old',
      local: { host: '127.0.0.1', port: old.port },
      remote: { host: remote.host, port: remote.port },
      cache: { dir, durability: 'normal' },
      forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }],
    });
    t.after(() => bridge.close());
    const up = once(bridge, 'localUp');
    await bridge.start();
    await up;
    assert.equal(bridge.stats().local.protocolLevel, 4);
    const pub = new Publisher(local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(100);
    assert.ok(await collector.until(() => collector.received.length >= 100, 5000));
    checkDelivery(pub.acked, collector.received, { maxDuplicates: 0 });
  });

  it('drops remote messages while the local broker is down and counts them', async (t) => {
    const s = await scenario(t);
    const bridge = s.bridge({ subscribe: [{ remote: 'devices/edge1/cmd/#', stripPrefix: 'devices/edge1/' }] });
    await bridge.start();
    await once(bridge, 'localUp');
    const down = once(bridge, 'localDown');
    await s.local.stop();
    await down;
    const remotePub = new MqttClient({ host: s.remote.host, port: s.remote.port });
    await remotePub.connect();
    t.after(() => remotePub.end());
    for (let i = 0; i < 5; i++) await remotePub.publish('devices/edge1/cmd/x', String(i), { qos: 1 });
    assert.ok(await s.collector.until(() => bridge.stats().drops.local_down === 5, 5000));
  });
});
