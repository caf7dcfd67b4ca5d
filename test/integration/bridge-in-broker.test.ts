/**
 * The ack chain of a bridge running inside a Tern broker (`[[bridges]]`): a
 * QoS 1 message matching a forward rule is acknowledged to its publisher only
 * once the bridge committed it to its cache. The broker runs as a child
 * process (the real CLI) with the remote unreachable and a long group-commit
 * interval, is SIGKILLed right after acknowledgements arrive, and restarted
 * with the remote reachable: every acknowledged message reaches the remote.
 * (Without the chain the broker would acknowledge at once and the kill would
 * land inside the commit interval, losing what the bridge had not written.)
 * In process: the PUBACK of a forwarded message comes after the commit; other
 * messages are acknowledged at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import Database from 'better-sqlite3';
import { createBridge } from '../../src/bridge/bridge.js';
import { MqttClient } from '../../src/client/client.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { startMosquitto, startTern } from '../bridge/helpers/brokers.js';
import { FaultProxy } from '../bridge/helpers/fault-proxy.js';
import { checkDelivery, Collector, Publisher, sleep } from '../bridge/helpers/traffic.js';

it('in-broker bridge: every message acknowledged before a SIGKILL reaches the remote after the restart', { timeout: 90_000 }, async (t) => {
  const remote = await startMosquitto();
  t.after(() => remote.close());
  const proxy = await FaultProxy.start(remote.host, remote.port);
  t.after(() => proxy.close());
  proxy.refuse(); // the remote is down
  const collector = new Collector(remote, 'devices/#');
  await collector.connect();
  t.after(() => collector.close());
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-inbroker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const broker = await BrokerProcess.start(t, {
    dataDir: join(dir, 'data'),
    toml: [
      '[[bridges]]',
      'name = "edge1"',
      '[bridges.remote]',
      'host = "127.0.0.1"',
      `port = ${proxy.port}`,
      'reconnect = { min_delay_ms = 50, max_delay_ms = 300 }',
      '[bridges.cache]',
      `dir = ${JSON.stringify(join(dir, 'cache'))}`,
      'durability = "normal"',
      // Commits wait 400 ms: an acknowledgement sent before its commit would be lost by the kill.
      'commit_interval_ms = 400',
      '[[bridges.forward]]',
      'local = "sensors/#"',
      'remote_prefix = "devices/edge1/"',
      'qos = 1',
      '',
    ].join('\n'),
  });

  const pub = new Publisher({ host: broker.host, port: broker.port });
  await pub.connect();
  pub.run(20, 5);
  const deadline = Date.now() + 20_000;
  while (pub.acked.length < 50 && Date.now() < deadline) await sleep(1);
  assert.ok(pub.acked.length >= 50, `acknowledgements arrived (${pub.acked.length})`);
  await broker.kill();
  const acked = [...pub.acked];
  await pub.stop();
  await pub.close();
  assert.ok(pub.next > acked.length, 'messages were still unacknowledged at the kill');

  proxy.pass();
  await broker.start();
  const all = await collector.until(() => collector.has(acked), 20_000);
  const seen = new Set(collector.received);
  assert.ok(all, `missing after the restart: ${acked.filter((n) => !seen.has(n)).slice(0, 20).join(',')} (${acked.length} acknowledged)`);
  // Nothing reached the remote before the kill: no duplicates, and the cached rows go in publish order.
  checkDelivery(acked, collector.received, { maxDuplicates: 0 });
});

it('in-broker bridge: the PUBACK waits for the commit of a forwarded message, not for others', { timeout: 30_000 }, async (t) => {
  const local = await startTern();
  t.after(() => local.close());
  const remote = await startMosquitto();
  t.after(() => remote.close());
  const proxy = await FaultProxy.start(remote.host, remote.port);
  t.after(() => proxy.close());
  proxy.refuse();
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-inbroker-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bridge = createBridge({
    name: 'edge1',
    broker: local.broker!,
    remote: { host: '127.0.0.1', port: proxy.port, reconnect: { minDelayMs: 50, maxDelayMs: 300 } },
    cache: { dir, durability: 'normal', commitIntervalMs: 300 },
    forward: [
      { local: 'sensors/#', remotePrefix: 'devices/edge1/', qos: 1 },
      { local: 'status/#', remotePrefix: 'devices/edge1/', qos: 0 },
    ],
  });
  t.after(() => bridge.close());
  await bridge.start();
  const client = new MqttClient({ host: local.host, port: local.port, protocolLevel: 5 });
  await client.connect();
  t.after(() => client.end());
  const cached = (): number => {
    const db = new Database(bridge.cacheFile, { readonly: true });
    try {
      return db.prepare('SELECT count(*) FROM msgs').pluck().get() as number;
    } finally {
      db.close();
    }
  };

  let t0 = Date.now();
  await client.publish('sensors/a', '1', { qos: 1 });
  const waited = Date.now() - t0;
  assert.ok(waited >= 250, `the PUBACK waited for the group commit (${waited} ms)`);
  assert.equal(cached(), 1, 'the row is in the cache file when the PUBACK arrives');

  t0 = Date.now();
  await client.publish('other/a', '1', { qos: 1 });
  await client.publish('status/a', '1', { qos: 1 }); // forwarded at QoS 0: nothing to wait for
  assert.ok(Date.now() - t0 < 250, `messages the bridge does not cache are acknowledged at once (${Date.now() - t0} ms)`);
});
