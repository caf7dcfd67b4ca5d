/**
 * GET /metrics, parsed with the tests' own Prometheus text parser, against
 * what the test did with real MQTT.js clients.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createBroker } from '../../src/broker/broker.js';
import { connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { call, eventually, startOps } from '../http/ops-helpers.js';
import { metric, parsePrometheusText, type Exposition } from '../http/prom-text.js';

const T = { timeout: 15_000 };

async function scrape(base: string): Promise<Exposition> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

test('connection, session, subscription, message and retained figures match what the clients did', T, async (t) => {
  const { base, mqttUrl, broker } = await startOps(t);
  const sub = await connectMqtt(t, mqttUrl, { clientId: 'm-sub' });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync({ 'm/#': { qos: 1 }, 'n/+': { qos: 0 } });
  const pub = await connectMqtt(t, mqttUrl, { clientId: 'm-pub' });
  for (let i = 0; i < 5; i++) await pub.publishAsync(`m/${i}`, 'x', { qos: 1 });
  await pub.publishAsync('z/unrouted', 'y', { qos: 0 });
  await pub.publishAsync('m/kept', 'r', { qos: 1, retain: true });
  await got.waitFor(6);
  const persistent = await connectMqtt(t, mqttUrl, { clientId: 'm-away', clean: false });
  await persistent.subscribeAsync('away/#', { qos: 1 });
  await persistent.endAsync();
  await eventually(() => broker.connectionCount === 2, 'm-away to disconnect');

  const m = await scrape(base);
  assert.equal(metric(m, 'tern_connections'), 2);
  assert.equal(metric(m, 'tern_connections_total'), 3);
  assert.equal(metric(m, 'tern_sessions', { state: 'online' }), 2);
  assert.equal(metric(m, 'tern_sessions', { state: 'offline' }), 1);
  assert.equal(metric(m, 'tern_subscriptions'), 3);
  assert.equal(metric(m, 'tern_messages_received_total'), 7);
  assert.equal(metric(m, 'tern_deliveries_total'), 6, 'five m/i plus m/kept to m-sub; z/unrouted to nobody');
  assert.equal(metric(m, 'tern_retained_messages'), 1);
  assert.equal(metric(m, 'tern_retained_bytes'), 1);
  assert.equal(metric(m, 'tern_inflight_messages'), 0);
  assert.equal(metric(m, 'tern_messages_dropped_total', { reason: 'queue_full' }), 0);
  assert.equal(m.types.get('tern_messages_received_total'), 'counter');
  assert.equal(m.types.get('tern_connections'), 'gauge');
  assert.equal(metric(m, 'tern_info', { version: (await call(base, 'GET', '/api/v1/overview')).body.version }), 1);
  // Counters keep counting across scrapes (delta-driven, not re-added).
  await pub.publishAsync('m/again', 'x', { qos: 1 });
  await got.waitFor(7);
  const again = await scrape(base);
  assert.equal(metric(again, 'tern_messages_received_total'), 8);
  assert.equal(metric(again, 'tern_deliveries_total'), 7);
});

test('messages queued for an offline session and dropped when its queue is full show as queue depth and drops by reason', T, async (t) => {
  const { base, mqttUrl, broker } = await startOps(t, { limits: { maxQueued: 3 } });
  const away = await connectMqtt(t, mqttUrl, { clientId: 'q-away', clean: false });
  await away.subscribeAsync('q/#', { qos: 1 });
  await away.endAsync();
  await eventually(() => broker.connectionCount === 0, 'q-away to disconnect');
  const pub = await connectMqtt(t, mqttUrl);
  for (let i = 0; i < 5; i++) await pub.publishAsync(`q/${i}`, 'x', { qos: 1 });
  const m = await scrape(base);
  assert.equal(metric(m, 'tern_queued_messages'), 3);
  assert.equal(metric(m, 'tern_session_queue_depth_max'), 3);
  assert.equal(metric(m, 'tern_messages_dropped_total', { reason: 'queue_full' }), 2);
  assert.equal(metric(m, 'tern_messages_dropped_total', { reason: 'offline_qos0' }), 0);
});

test('two brokers in one process keep separate registries, each with process metrics', T, async (t) => {
  const one = await startOps(t, {}, { processMetrics: true });
  const two = await startOps(t, {}, { processMetrics: true });
  await connectMqtt(t, one.mqttUrl);
  await connectMqtt(t, one.mqttUrl);
  await connectMqtt(t, two.mqttUrl);
  const [a, b] = [await scrape(one.base), await scrape(two.base)];
  assert.equal(metric(a, 'tern_connections'), 2);
  assert.equal(metric(b, 'tern_connections'), 1);
  for (const m of [a, b]) {
    assert.ok(metric(m, 'process_resident_memory_bytes') > 0);
    assert.equal(m.types.get('nodejs_heap_size_used_bytes'), 'gauge');
  }
});

test('message-logging sinks report written rows, and live streams are counted', T, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tern-metrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { base, mqttUrl, ops } = await startOps(t, { messageLog: { file: { enabled: true, path: join(dir, 'log.ndjson'), filters: ['s/#'] } } });
  const abort = new AbortController();
  t.after(() => abort.abort());
  await fetch(`${base}/api/v1/stream`, { signal: abort.signal });
  const pub = await connectMqtt(t, mqttUrl);
  await pub.publishAsync('s/1', 'a', { qos: 1 });
  await pub.publishAsync('t/1', 'b', { qos: 1 });
  await pub.publishAsync('s/2', 'c', { qos: 1 });
  await ops.sinks[0]!.flush();
  const m = await scrape(base);
  assert.equal(metric(m, 'tern_message_log_rows_total', { sink: 'file', outcome: 'written' }), 2);
  assert.equal(metric(m, 'tern_message_log_rows_total', { sink: 'file', outcome: 'dropped' }), 0);
  assert.equal(metric(m, 'tern_http_streams'), 1);
});

test('the storage commit latency histogram counts the commits of QoS 1 traffic to a persistent session on SQLite', T, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tern-metrics-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { base, mqttUrl } = await startOps(t, { storage: { backend: 'sqlite', path: dir } });
  const histogram = 'tern_storage_commit_duration_seconds';
  const sub = await connectMqtt(t, mqttUrl, { clientId: 'lat-sub', clean: false });
  await sub.subscribeAsync('lat/#', { qos: 1 });
  // Offline, so every message must be stored (a connected subscriber's quick ack can cancel the write).
  await sub.endAsync();
  const before = await scrape(base);
  assert.equal(before.types.get(histogram), 'histogram');
  const count0 = metric(before, `${histogram}_count`, { backend: 'sqlite' });
  assert.ok(count0 >= 1, 'the persistent session and its subscription were committed');
  const pub = await connectMqtt(t, mqttUrl);
  for (let i = 0; i < 20; i++) await pub.publishAsync(`lat/${i}`, 'x', { qos: 1 });
  const after = await scrape(base);
  const count = metric(after, `${histogram}_count`, { backend: 'sqlite' });
  // Each awaited publish is stored for the offline session before its PUBACK: at least one commit each.
  assert.ok(count >= count0 + 20, `commits ${count0} -> ${count}`);
  assert.ok(metric(after, `${histogram}_sum`, { backend: 'sqlite' }) > 0);
  assert.equal(metric(after, `${histogram}_bucket`, { backend: 'sqlite', le: '+Inf' }), count);
  assert.ok(metric(after, `${histogram}_bucket`, { backend: 'sqlite', le: '2.5' }) <= count);
});

test('an in-broker bridge shows its link state, backlog, forwarded count, drops and last-ack age', { timeout: 30_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tern-metrics-bridge-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const remote = createBroker({ listeners: [{ port: 0 }], storage: { backend: 'memory' }, log: { level: 'silent' }, sys: { interval: 0 } });
  const [remoteAddress] = await remote.listen();
  let remoteOpen = true;
  t.after(() => (remoteOpen ? remote.close() : undefined));
  const { base, mqttUrl } = await startOps(t, {
    bridges: [
      {
        name: 'up1',
        remote: { host: '127.0.0.1', port: remoteAddress!.port, reconnect: { minDelayMs: 50, maxDelayMs: 200 } },
        forward: [{ local: 'f/#', qos: 1 }],
        cache: { dir },
      },
    ],
  });
  const atRemote = await connectMqtt(t, `mqtt://127.0.0.1:${remoteAddress!.port}`);
  const got = new MessageCollector(atRemote);
  await atRemote.subscribeAsync('f/#', { qos: 1 });
  const pub = await connectMqtt(t, mqttUrl);
  const up = await eventually(async () => {
    const m = await scrape(base);
    return metric(m, 'tern_bridge_up', { bridge: 'up1', side: 'remote' }) === 1 ? m : null;
  }, 'the bridge to connect', 10_000);
  assert.equal(metric(up, 'tern_bridge_up', { bridge: 'up1', side: 'local' }), 1);
  for (let i = 0; i < 3; i++) await pub.publishAsync(`f/${i}`, 'x', { qos: 1 });
  await got.waitFor(3);
  const m = await eventually(async () => {
    const s = await scrape(base);
    // Acknowledged rows leave the cache with the next commit: the backlog reaches 0 just after.
    return metric(s, 'tern_bridge_forwarded_total', { bridge: 'up1' }) === 3 && metric(s, 'tern_bridge_backlog_messages', { bridge: 'up1' }) === 0 ? s : null;
  }, 'three forwarded messages and an empty backlog', 5000);
  assert.ok(metric(m, 'tern_bridge_last_ack_age_seconds', { bridge: 'up1' }) >= 0);
  assert.equal(metric(m, 'tern_bridge_dropped_total', { bridge: 'up1', reason: 'too_large' }), 0);
  assert.equal(m.types.get('tern_bridge_dropped_total'), 'counter');
  assert.equal(m.types.get('tern_bridge_backlog_messages'), 'gauge');

  // The remote goes away: the link shows down and what is published waits in the backlog.
  await atRemote.endAsync(true);
  remoteOpen = false;
  await remote.close();
  await eventually(async () => metric(await scrape(base), 'tern_bridge_up', { bridge: 'up1', side: 'remote' }) === 0, 'the link to go down', 10_000);
  for (let i = 0; i < 4; i++) await pub.publishAsync(`f/later/${i}`, 'y', { qos: 1 });
  const down = await eventually(async () => {
    const s = await scrape(base);
    return metric(s, 'tern_bridge_backlog_messages', { bridge: 'up1' }) === 4 ? s : null;
  }, 'a backlog of four', 5000);
  assert.ok(metric(down, 'tern_bridge_backlog_bytes', { bridge: 'up1' }) > 0);
  assert.equal(metric(down, 'tern_bridge_forwarded_total', { bridge: 'up1' }), 3);
});
