/**
 * Configuration reload in process: how two configurations are compared
 * (src/broker/reload.ts), and Broker.reload(next) applying what can change
 * live to a running broker: limits read at use time, $SYS rescheduled,
 * message-log sinks restarted, a sink that cannot start keeping the old one.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { diffConfig, tomlKey, withLive } from '../../src/broker/reload.js';
import { resolveConfig } from '../../src/config/load.js';
import type { TernConfigInput } from '../../src/config/schema.js';
import { connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { eventually, startOps } from '../http/ops-helpers.js';
import { metric, parsePrometheusText } from '../http/prom-text.js';

const T = { timeout: 20_000 };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-reload-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function changes(a: TernConfigInput, b: TernConfigInput): { live: Record<string, string[]>; restart: string[] } {
  const d = diffConfig(resolveConfig(a), resolveConfig(b));
  return {
    live: Object.fromEntries([...d.live].map(([section, paths]) => [section, paths.map(tomlKey)])),
    restart: d.restart.map(tomlKey),
  };
}

test('diffConfig sorts changed keys into live sections and restart-required keys, spelled as in TOML', () => {
  assert.deepEqual(changes({}, {}), { live: {}, restart: [] });
  assert.deepEqual(
    changes(
      { listeners: [{ port: 1883 }], log: { level: 'info' } },
      {
        listeners: [{ port: 1884 }],
        limits: { maxInflight: 5, maxQueued: 10 },
        log: { level: 'debug', format: 'json' },
        storage: { path: '/elsewhere' },
        sys: { interval: 5 },
        messageLog: { file: { filters: ['a/#', 'b/#'] } },
        mqtt: { maxQos: 1 },
        auth: { aclFile: '/etc/acl' },
        plugins: { myPlugin: { module: './p.js', options: { someKey: 1 } } },
      },
    ),
    {
      live: {
        limits: ['limits.max_inflight', 'limits.max_queued'],
        'log.level': ['log.level'],
        sys: ['sys.interval'],
        'messageLog.file': ['message_log.file.filters'],
      },
      restart: ['listeners[0].port', 'mqtt.max_qos', 'storage.path', 'log.format', 'auth.acl_file', 'plugins.myPlugin'],
    },
  );
  // A listener added or removed is one change to the array.
  assert.deepEqual(changes({}, { listeners: [{ port: 1883 }, { port: 8883 }] }).restart, ['listeners']);
});

test('withLive takes only the live sections from the new configuration and leaves the rest running', () => {
  const running = resolveConfig({ limits: { maxInflight: 20 }, log: { level: 'info', format: 'json' }, storage: { path: '/a' } });
  const next = resolveConfig({ limits: { maxInflight: 5 }, log: { level: 'debug', format: 'pretty' }, storage: { path: '/b' } });
  const out = withLive(running, next, ['limits', 'log.level']);
  assert.equal(out.limits, next.limits, 'the limits object is swapped whole');
  assert.deepEqual(out.log, { level: 'debug', format: 'json' });
  assert.equal(out.storage.path, '/a');
  assert.ok(Object.isFrozen(out) && Object.isFrozen(out.log));
  assert.throws(() => withLive(running, next, ['storage']), /not a live configuration section/);
});

test('Broker.reload(next) applies limits at use time, the log level and the $SYS interval; the rest is reported', T, async (t) => {
  const { broker, mqttUrl } = await startOps(t, { limits: { maxTopicLevels: 10 } });
  const sub = await connectMqtt(t, mqttUrl);
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('$SYS/broker/uptime');
  assert.equal(broker.core.maxInflight, 20);

  const deep = Array.from({ length: 12 }, (_, i) => `l${i}`).join('/');
  await assert.rejects(broker.publish({ topic: deep, payload: 'x' }), { code: 'ERR_MQTT_TOPIC_NAME_INVALID' });
  const result = await broker.reload({
    listeners: [{ port: 0 }],
    storage: { backend: 'memory' },
    http: { enabled: true, port: 0 },
    limits: { maxTopicLevels: 20, maxInflight: 7 },
    log: { level: 'fatal' },
    sys: { interval: 1 },
    mqtt: { maxQos: 1 },
  });
  assert.deepEqual(result, {
    reloaded: true,
    applied: ['limits.max_inflight', 'limits.max_topic_levels', 'log.level', 'sys.interval'],
    restartRequired: ['mqtt.max_qos'],
    failures: [],
  });
  await broker.publish({ topic: deep, payload: 'x' });
  assert.equal(broker.core.maxInflight, 7);
  assert.equal(broker.config.limits.maxInflight, 7);
  assert.equal(broker.config.mqtt.maxQos, 2, 'restart-required keys keep their running value');
  assert.equal(broker.log.level, 'fatal');
  await got.waitFor(1, 5000);
  assert.equal(got.messages[0]!.topic, '$SYS/broker/uptime');

  // The same configuration again: nothing to do.
  const again = await broker.reload({
    listeners: [{ port: 0 }],
    storage: { backend: 'memory' },
    http: { enabled: true, port: 0 },
    limits: { maxTopicLevels: 20, maxInflight: 7 },
    log: { level: 'fatal' },
    sys: { interval: 1 },
  });
  assert.deepEqual([again.applied, again.restartRequired], [[], []]);

  // An invalid configuration changes nothing.
  const refused = await broker.reload({ limits: { maxInflight: 0 } });
  assert.equal(refused.reloaded, false);
  assert.equal(refused.failures[0]!.code, 'ERR_CONFIG_INVALID');
  assert.match(refused.failures[0]!.message, /limits\.maxInflight/);
  assert.equal(broker.core.maxInflight, 7);
});

test('a message-log sink moves to a new file on reload, and one that cannot open keeps the running sink', T, async (t) => {
  const dir = await tempDir(t);
  const first = join(dir, 'one.ndjson');
  const second = join(dir, 'two.ndjson');
  const blocker = join(dir, 'not-a-dir');
  await writeFile(blocker, '');
  const base: TernConfigInput = { listeners: [{ port: 0 }], storage: { backend: 'memory' }, log: { level: 'silent' }, http: { enabled: true, port: 0 }, sys: { interval: 0 } };
  const { broker, ops, mqttUrl } = await startOps(t, { messageLog: { file: { enabled: true, path: first, filters: ['s/#'] } } });
  const pub = await connectMqtt(t, mqttUrl);
  const lines = async (path: string): Promise<string[]> =>
    (await readFile(path, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { topic: string }).topic);
  const rows = async (): Promise<number> => metric(parsePrometheusText(await ops.metrics.render()), 'tern_message_log_rows_total', { sink: 'file', outcome: 'written' });

  await pub.publishAsync('s/1', 'a', { qos: 1 });
  await ops.sinks[0]!.flush();
  assert.equal(await rows(), 1);

  const moved = await broker.reload({ ...base, messageLog: { file: { enabled: true, path: second, filters: ['s/#'] } } });
  assert.deepEqual(moved.applied, ['message_log.file.path']);
  await pub.publishAsync('s/2', 'b', { qos: 1 });
  await eventually(async () => (await lines(second)).length === 1, 's/2 in the new file');
  assert.deepEqual([await lines(first), await lines(second)], [['s/1'], ['s/2']]);
  assert.equal(await rows(), 2, 'the counter keeps counting across the new sink');

  const failed = await broker.reload({ ...base, messageLog: { file: { enabled: true, path: join(blocker, 'x.ndjson'), filters: ['s/#'] } } });
  assert.equal(failed.reloaded, true);
  assert.deepEqual(failed.applied, []);
  // mkdir of the file's directory fails: the directory's name is taken by a file.
  assert.deepEqual(failed.failures.map((f) => [f.key, f.code]), [['message_log.file', 'EEXIST']]);
  assert.equal(broker.config.messageLog.file.path, second, 'the running sink keeps its section');
  await pub.publishAsync('s/3', 'c', { qos: 1 });
  await eventually(async () => (await lines(second)).length === 2, 's/3 still logged');

  const off = await broker.reload({ ...base, messageLog: { file: { enabled: false, path: second, filters: ['s/#'] } } });
  assert.deepEqual(off.applied, ['message_log.file.enabled']);
  assert.equal(ops.sinks.length, 0);
  await pub.publishAsync('s/4', 'd', { qos: 1 });
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(await lines(second), ['s/2', 's/3']);
});
