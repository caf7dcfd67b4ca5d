/**
 * Link faults between the bridge and the remote (the fault proxy), broker
 * restarts, and live traffic during a large replay. After each: every
 * message the local broker acknowledged reached the remote, first
 * deliveries in publish order, duplicates within the in-flight window per
 * fault, and the state topic `online` again.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { once, scenario, STATE_TOPIC } from '../bridge/helpers/setup.js';
import { checkDelivery, Publisher, sleep } from '../bridge/helpers/traffic.js';

const WINDOW = 100;

describe('bridge: link faults', { timeout: 60_000 }, () => {
  it('loses nothing while the remote link flaps every 1-3 s with the publisher running', async (t) => {
    const s = await scenario(t);
    const bridge = s.bridge({ remote: { host: '127.0.0.1', inflightWindow: WINDOW } });
    await bridge.start();
    await once(bridge, 'remoteUp');
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    pub.run(10, 10);
    let faults = 0;
    const until = Date.now() + 6000;
    while (Date.now() < until) {
      await sleep(1000 + Math.floor(Math.random() * 2000));
      s.proxy.drop();
      faults++;
    }
    await pub.stop();
    await pub.settle();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 15_000), 'all acknowledged messages arrive');
    assert.ok(bridge.stats().remote.connects >= faults, 'reconnected after each drop');
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: faults * WINDOW });
    assert.ok(await s.collector.until(() => s.collector.retained.get(STATE_TOPIC) === 'online', 3000));
    assert.ok(pub.acked.length > 1000);
  });

  it('detects a half-open link (no FIN) by keep-alive / ack timeout and recovers', async (t) => {
    const s = await scenario(t);
    const bridge = s.bridge({ remote: { host: '127.0.0.1', keepalive: 1, ackTimeoutMs: 1000, connectTimeoutMs: 1000 } });
    await bridge.start();
    await once(bridge, 'remoteUp');
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    pub.run(10, 20);
    await sleep(500);
    const down = once(bridge, 'remoteDown', 5000);
    s.proxy.blackhole();
    const started = Date.now();
    await down;
    assert.ok(Date.now() - started < 4000, 'detected within a few seconds');
    await sleep(800); // messages pile up in the cache meanwhile
    assert.ok(bridge.stats().backlog.messages > 0);
    s.proxy.pass();
    await once(bridge, 'remoteUp', 5000);
    await pub.stop();
    await pub.settle();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 10_000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: WINDOW });
  });

  it('closes and resends when PUBACKs are withheld (ack timeout), with a Tern remote', async (t) => {
    const s = await scenario(t, { remote: 'tern' });
    const bridge = s.bridge({ remote: { host: '127.0.0.1', keepalive: 30, ackTimeoutMs: 1000 } });
    await bridge.start();
    await once(bridge, 'remoteUp');
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    pub.run(10, 20);
    await sleep(300);
    const down = once<[Error | undefined]>(bridge, 'remoteDown', 5000);
    s.proxy.holdAcks();
    const [err] = await down;
    assert.match(String(err?.message), /acknowledgement|ack/i);
    await once(bridge, 'remoteUp', 5000);
    await sleep(300);
    await pub.stop();
    await pub.settle();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 10_000));
    // The withheld window was delivered (the remote got it) and is sent again: bounded duplicates.
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: WINDOW });
    assert.ok(bridge.stats().lastAckAgeMs < 2000);
  });

  it('keeps order between a large replay and live traffic', async (t) => {
    const s = await scenario(t);
    s.proxy.refuse();
    const bridge = s.bridge({ cache: { batchSize: 500 } });
    await bridge.start();
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(20_000);
    await s.collector.until(() => bridge.stats().backlog.messages === 20_000, 10_000);
    assert.equal(bridge.stats().backlog.messages, 20_000);
    pub.run(10, 10); // ~1k msg/s live while the backlog drains
    s.proxy.pass();
    await once(bridge, 'drained', 20_000);
    await sleep(500);
    await pub.stop();
    await pub.settle();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 10_000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0 });
    assert.ok(pub.acked.length > 20_000);
  });
});

describe('bridge: broker restarts', { timeout: 60_000 }, () => {
  it('survives a remote restart and a local restart (Mosquitto with persistence on both sides)', async (t) => {
    const s = await scenario(t, { local: 'mosquitto', remote: 'mosquitto', persistent: true });
    const bridge = s.bridge();
    await bridge.start();
    await once(bridge, 'remoteUp');
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    pub.run(5, 10);
    await sleep(700);
    await s.remote.stop();
    await sleep(700);
    // Listen before the restart: the bridge may reconnect before start() returns. Reconnects follow
    // the backoff (with jitter): generous waits, for a loaded machine.
    const remoteUp = once(bridge, 'remoteUp', 15_000);
    await s.remote.start();
    await remoteUp;
    await sleep(700);
    await s.local.stop();
    await sleep(500);
    const localUp = once(bridge, 'localUp', 15_000);
    await s.local.start();
    await localUp;
    await sleep(700);
    await pub.stop();
    await pub.settle();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 15_000), 'all acknowledged messages arrive');
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 3 * WINDOW });
    assert.ok(await s.collector.until(() => s.collector.retained.get(STATE_TOPIC) === 'online', 3000));
  });
});
