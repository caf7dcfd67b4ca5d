/**
 * Node failure and Redis loss with real processes: three `tern` nodes on one
 * real redis-server. A node is killed with SIGKILL while a publisher on
 * another node keeps sending numbered QoS 1 messages: the dead node's
 * clients' wills are published, its persistent session resumes on another
 * node, and every message the publisher had acknowledged reaches both the
 * resumed session and a subscriber on a surviving node (order is checked for
 * the surviving subscriber; across the failure it is reported, not promised).
 * Then Redis itself
 * is restarted under load: the nodes report not ready while it is gone and
 * serve again when it returns.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { BrokerProcess } from '../helpers/broker-process.js';
import { clientId, connectMqtt, MessageCollector, mqttClient } from '../helpers/mqtt-client.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { clusterPrefix } from './helpers.js';

const redis = await startRedisServer({ after });

async function startNodes(t: { after(fn: () => unknown): void }, ids: string[]): Promise<BrokerProcess[]> {
  const prefix = clusterPrefix();
  return Promise.all(
    ids.map((id) =>
      BrokerProcess.start(t, {
        backend: 'redis',
        storageToml: `redis_url = "${redis.url}"\nredis_prefix = "${prefix}"`,
        toml: `[cluster]\nenabled = true\nnode_id = "${id}"\nheartbeat_interval_ms = 200\nnode_timeout_ms = 1000\n`,
        startTimeoutMs: 60_000,
      }),
    ),
  );
}

/** Publish numbered QoS 1 messages until stopped; returns the numbers acknowledged. */
function publishLoop(client: MqttClient, topic: string): { stop(): Promise<number[]> } {
  const acked: number[] = [];
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      // A publish the broker cannot acknowledge (Redis gone: the client is disconnected) is not owed; stop waiting for it.
      const ok = await Promise.race([client.publishAsync(topic, String(i), { qos: 1 }).then(() => true, () => false), sleep(2000).then(() => false)]);
      if (ok) acked.push(i);
      await sleep(5);
      if (client.disconnected) break;
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return acked;
    },
  };
}

test('a node killed with SIGKILL: wills fire, its session resumes elsewhere, nothing acknowledged is lost', { timeout: 120_000 }, async (t) => {
  const [a, b, c] = await startNodes(t, ['a', 'b', 'c']);

  const watcher = await connectMqtt(t, c!.url, { clientId: clientId('watch') });
  const wills = new MessageCollector(watcher);
  await watcher.subscribeAsync('wills/#', { qos: 1 });
  await connectMqtt(t, a!.url, { clientId: clientId('w'), reconnectPeriod: 0, will: { topic: 'wills/w', payload: Buffer.from('gone'), qos: 1, retain: false } });

  const persistentId = clientId('durable');
  const onA = await connectMqtt(t, a!.url, { clientId: persistentId, clean: false, reconnectPeriod: 0 });
  const gotA = new MessageCollector(onA);
  await onA.subscribeAsync('k/#', { qos: 1 });
  const onB = await connectMqtt(t, b!.url, { clientId: clientId('live') });
  const gotB = new MessageCollector(onB);
  await onB.subscribeAsync('k/#', { qos: 1 });

  const pub = await connectMqtt(t, c!.url, { clientId: clientId('pub') });
  const loop = publishLoop(pub, 'k/n');
  await sleep(800);
  await a!.kill();
  const killedAt = Date.now();
  const [will] = await wills.waitFor(1, 10_000);
  assert.equal(will!.payload, 'gone', 'the dead node\'s client will was published');
  const willDelay = Date.now() - killedAt;
  await sleep(500);

  // The persistent session comes back on node b with what it missed.
  const resumed = mqttClient(t, b!.url, { clientId: persistentId, clean: false });
  const gotResumed = new MessageCollector(resumed);
  const present = await new Promise<boolean>((resolve) => resumed.once('connect', (p) => resolve(p.sessionPresent)));
  assert.equal(present, true, 'session present on node b');
  await sleep(800);
  const acked = await loop.stop();
  assert.ok(acked.length > 50, `publisher kept going (${acked.length} acknowledged)`);

  const last = acked[acked.length - 1]!;
  const seen = (cs: MessageCollector[]): Set<number> => new Set(cs.flatMap((x) => x.messages.map((m) => Number(m.payload))));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && !(seen([gotA, gotResumed]).has(last) && seen([gotB]).has(last))) await sleep(100);
  const durable = seen([gotA, gotResumed]);
  const live = seen([gotB]);
  const missingDurable = acked.filter((n) => !durable.has(n));
  const missingLive = acked.filter((n) => !live.has(n));
  const info = `acked ${acked.length}; on A up to ${Math.max(...gotA.messages.map((m) => Number(m.payload)))}; resumed got ${gotResumed.messages.slice(0, 5).map((m) => m.payload).join(',')}...; will after ${Date.now() - killedAt}`;
  assert.deepEqual(missingDurable, [], `every acknowledged message reached the persistent session (${info})`);
  assert.deepEqual(missingLive, [], 'every acknowledged message reached the subscriber on a surviving node');
  const liveFirsts = [...new Set(gotB.messages.map((m) => Number(m.payload)))];
  assert.deepEqual(liveFirsts, [...liveFirsts].sort((x, y) => x - y), 'the surviving subscriber got them in order');
  // Order across a node failure is not promised (docs/cluster.md): count what arrived out of order.
  let late = 0;
  let highest = -1;
  const first = new Set<number>();
  for (const m of gotResumed.messages) {
    const n = Number(m.payload);
    if (first.has(n)) continue;
    first.add(n);
    if (n < highest) late++;
    else highest = n;
  }
  t.diagnostic(`${late} first deliveries to the resumed session arrived after a newer one`);
  t.diagnostic(`${acked.length} acknowledged; will after ${willDelay} ms; ${gotResumed.count} delivered to the resumed session`);
});

test('Redis restarted under load: nodes are not ready while it is gone, then serve again', { timeout: 120_000 }, async (t) => {
  const own = await startRedisServer(t);
  const prefix = clusterPrefix();
  const nodes = await Promise.all(
    ['r1', 'r2'].map((id) =>
      BrokerProcess.start(t, {
        backend: 'redis',
        storageToml: `redis_url = "${own.url}"\nredis_prefix = "${prefix}"`,
        toml: `[cluster]\nenabled = true\nnode_id = "${id}"\nheartbeat_interval_ms = 200\nnode_timeout_ms = 1000\n`,
        startTimeoutMs: 60_000,
      }),
    ),
  );
  // Load across the restart: a cross-node subscriber and a publisher that keeps sending at QoS 1 and 0.
  const loadSub = await connectMqtt(t, nodes[1]!.url, { clientId: clientId('load-sub'), reconnectPeriod: 0 });
  await loadSub.subscribeAsync('load/#', { qos: 1 });
  const loadPub = await connectMqtt(t, nodes[0]!.url, { clientId: clientId('load-pub'), reconnectPeriod: 0 });
  const load = publishLoop(loadPub, 'load/x');
  let qos0 = true;
  const qos0Loop = (async () => {
    while (qos0) {
      loadPub.publish('load/y', 'q0', { qos: 0 });
      await sleep(2);
    }
  })();
  await sleep(300);
  // A subscriber that leaves during the outage makes a route change nobody can write (it must not end the process).
  const leaving = await connectMqtt(t, nodes[0]!.url, { clientId: clientId('leaving'), reconnectPeriod: 0 });
  await leaving.subscribeAsync('only/here', { qos: 1 });
  await own.stop();
  await leaving.endAsync();
  await sleep(1000);
  assert.equal(nodes[0]!.running, true, 'the node survived a route change during the outage');
  // A new connection is refused while Redis is away.
  const refused = await new Promise<boolean>((resolve) => {
    const probe = mqttClient(t, nodes[0]!.url, { clientId: clientId('probe'), reconnectPeriod: 0, connectTimeout: 3000 });
    probe.once('connect', () => resolve(false));
    probe.once('error', () => resolve(true));
    probe.once('close', () => resolve(true));
  });
  assert.equal(refused, true, 'no new work without Redis');
  await own.start();
  qos0 = false;
  await qos0Loop;
  const ackedUnderLoad = await load.stop();
  assert.ok(ackedUnderLoad.length > 0, `publishes were acknowledged before the outage (${ackedUnderLoad.length})`);
  assert.equal(nodes[0]!.running && nodes[1]!.running, true, 'both nodes lived through the outage under load');
  // Back: cross-node pub/sub works again.
  const deadline = Date.now() + 20_000;
  let ok = false;
  while (!ok && Date.now() < deadline) {
    try {
      const sub = await connectMqtt(t, nodes[1]!.url, { clientId: clientId('s2'), reconnectPeriod: 0 });
      const got = new MessageCollector(sub);
      await sub.subscribeAsync('back/#', { qos: 1 });
      const pub = await connectMqtt(t, nodes[0]!.url, { clientId: clientId('p2'), reconnectPeriod: 0 });
      await pub.publishAsync('back/1', 'again', { qos: 1 });
      await got.waitForPayload('again', 3000);
      ok = true;
    } catch {
      await sleep(500);
    }
  }
  assert.equal(ok, true, 'nodes serve across the cluster again after Redis returned');
});
