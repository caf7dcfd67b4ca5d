/**
 * Configuration reload against the real CLI (`tern -c FILE` as a child
 * process): the test edits the file, then sends SIGHUP or calls
 * POST /api/v1/reload, and checks with real MQTT.js clients that limits,
 * the log level and the message-log filters changed live, that a listener
 * change is reported as needing a restart, and that a broken file keeps the
 * running configuration. Also the password and ACL files through SIGHUP.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { IConnackPacket, MqttClient } from 'mqtt';
import { hashPassword } from '../../src/auth/password-file.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { connectMqtt, MessageCollector, mqttClient } from '../helpers/mqtt-client.js';
import { accepts, freePort } from '../helpers/net.js';
import { call, eventually } from '../http/ops-helpers.js';

const T = { timeout: 90_000 };

interface Settings {
  level: string;
  maxPacketSize: number;
  maxInflight: number;
  filters: string[];
  /** The first listener's port as the file says (the process keeps the one it started with). */
  listenerPort?: number;
}

/** The whole config file for `bp`, with `s` filled in. */
function configText(bp: BrokerProcess, httpPort: number, s: Settings): string {
  return [
    '[[listeners]]',
    'type = "tcp"',
    'host = "127.0.0.1"',
    `port = ${s.listenerPort ?? bp.port}`,
    '',
    '[storage]',
    'backend = "memory"',
    '',
    '[log]',
    `level = "${s.level}"`,
    'format = "json"',
    '',
    '[limits]',
    `max_packet_size = ${s.maxPacketSize}`,
    `max_inflight = ${s.maxInflight}`,
    '',
    '[http]',
    'enabled = true',
    `port = ${httpPort}`,
    '',
    '[sys]',
    'interval = 0',
    '',
    '[message_log.file]',
    'enabled = true',
    `path = ${JSON.stringify(messageLogPath(bp))}`,
    `filters = ${JSON.stringify(s.filters)}`,
    '',
  ].join('\n');
}

function messageLogPath(bp: BrokerProcess): string {
  return join(dirname(bp.configFile), 'messages.ndjson');
}

const FIRST: Settings = { level: 'info', maxPacketSize: 100_000, maxInflight: 20, filters: ['a/#'] };

async function startWith(t: TestContext, s: Settings): Promise<{ bp: BrokerProcess; httpPort: number; url: string }> {
  const bp = await BrokerProcess.create(t, { backend: 'memory' });
  const httpPort = await freePort();
  await writeFile(bp.configFile, configText(bp, httpPort, s));
  await bp.start();
  return { bp, httpPort, url: bp.url };
}

type LogEntry = Record<string, any>;

/** JSON log lines of the process, from character `from` of its output. */
function logLines(bp: BrokerProcess, from = 0): LogEntry[] {
  const out: LogEntry[] = [];
  for (const line of bp.output().slice(from).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as LogEntry);
    } catch {
      // a line still being written
    }
  }
  return out;
}

/** The first log line after `from` whose msg is one of `msgs` (bounded wait). */
function nextLog(bp: BrokerProcess, from: number, ...msgs: string[]): Promise<LogEntry> {
  return eventually(() => logLines(bp, from).find((e) => msgs.includes(e['msg'])), `a log line "${msgs.join('" or "')}"`, 15_000);
}

/** SIGHUP and the broker's reload log line. */
async function hangup(bp: BrokerProcess, ...msgs: string[]): Promise<LogEntry> {
  const from = bp.output().length;
  process.kill(bp.pid!, 'SIGHUP');
  return nextLog(bp, from, ...(msgs.length > 0 ? msgs : ['configuration reloaded', 'configuration reloaded with failures']));
}

/** The Maximum Packet Size a v5 client is told in CONNACK. */
async function announcedMaxPacketSize(t: TestContext, url: string): Promise<number | undefined> {
  const client = mqttClient(t, url, { protocolVersion: 5 });
  const connack = await new Promise<IConnackPacket>((resolve, reject) => {
    client.once('connect', resolve);
    client.once('error', reject);
  });
  await client.endAsync();
  return connack.properties?.maximumPacketSize;
}

/** Resolves when the client's connection closes (bounded). */
function closed(client: MqttClient): Promise<void> {
  return eventually(() => !client.connected, 'the broker to close the connection', 5000).then(() => undefined);
}

async function messageLogTopics(bp: BrokerProcess): Promise<string[]> {
  const text = await readFile(messageLogPath(bp), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { topic: string }).topic);
}

test('SIGHUP applies new limits, log level and message-log filters live and reports a listener change as needing a restart', T, async (t) => {
  const { bp, url, httpPort } = await startWith(t, FIRST);
  assert.equal(await announcedMaxPacketSize(t, url), 100_000);
  const sub = await connectMqtt(t, url);
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('big/#', { qos: 1 });
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('big/1', Buffer.alloc(2000, 1), { qos: 1 });
  await got.waitFor(1);
  await pub.publishAsync('a/0', 'logged', { qos: 1 });
  await eventually(async () => (await messageLogTopics(bp)).includes('a/0'), 'a/0 in the message log');
  assert.equal(logLines(bp).filter((e) => e['level'] === 20).length, 0, 'no debug lines at level info');

  const otherPort = await freePort();
  await writeFile(bp.configFile, configText(bp, httpPort, { level: 'debug', maxPacketSize: 1000, maxInflight: 5, filters: ['b/#'], listenerPort: otherPort }));
  const entry = await hangup(bp);
  assert.equal(entry['msg'], 'configuration reloaded', JSON.stringify(entry));
  for (const key of ['limits.max_packet_size', 'limits.max_inflight', 'log.level', 'message_log.file.filters']) {
    assert.ok(entry['applied'].includes(key), `${key} applied: ${JSON.stringify(entry)}`);
  }
  assert.deepEqual(entry['restartRequired'], ['listeners[0].port']);

  // The new packet-size limit: announced to v5 clients, enforced on a 3.1.1 client that ignores it.
  assert.equal(await announcedMaxPacketSize(t, url), 1000);
  const big = await connectMqtt(t, url);
  big.publish('big/2', Buffer.alloc(2000, 2), { qos: 1 });
  await closed(big);
  await pub.publishAsync('big/3', 'small', { qos: 1 });
  await got.waitFor(2);
  assert.deepEqual(got.messages.map((m) => m.topic), ['big/1', 'big/3'], 'the oversized message was refused');

  // Log level debug: a client disconnecting is logged now.
  const from = bp.output().length;
  const brief = await connectMqtt(t, url);
  await brief.endAsync();
  const debug = await nextLog(bp, from, 'client disconnected');
  assert.equal(debug['level'], 20);

  // The sink follows the new filter.
  await pub.publishAsync('a/1', 'not logged', { qos: 1 });
  await pub.publishAsync('b/1', 'logged', { qos: 1 });
  await eventually(async () => (await messageLogTopics(bp)).includes('b/1'), 'b/1 in the message log');
  assert.deepEqual(await messageLogTopics(bp), ['a/0', 'b/1']);

  // The listener stays where it was until a restart.
  assert.equal(await accepts(bp.port), true);
  assert.equal(await accepts(otherPort), false);
});

test('POST /api/v1/reload returns what was applied and what needs a restart; a broken file keeps the running configuration', T, async (t) => {
  const { bp, url, httpPort } = await startWith(t, FIRST);
  const base = `http://127.0.0.1:${httpPort}`;
  const otherPort = await freePort();
  const second: Settings = { level: 'warn', maxPacketSize: 1000, maxInflight: 20, filters: ['b/#'], listenerPort: otherPort };
  await writeFile(bp.configFile, configText(bp, httpPort, second));
  const r = await call(base, 'POST', '/api/v1/reload', {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body, {
    reloaded: true,
    applied: ['limits.max_packet_size', 'log.level', 'message_log.file.filters'],
    restartRequired: ['listeners[0].port'],
    failures: [],
  });
  assert.equal(await announcedMaxPacketSize(t, url), 1000);

  // A value the schema refuses: 422 naming file, line and key; nothing changes.
  const text = configText(bp, httpPort, { ...second, maxPacketSize: 5 });
  await writeFile(bp.configFile, text);
  const line = text.split('\n').findIndex((l) => l.startsWith('max_packet_size')) + 1;
  const refused = await call(base, 'POST', '/api/v1/reload', {});
  assert.equal(refused.status, 422, JSON.stringify(refused.body));
  assert.equal(refused.body.reloaded, false);
  assert.equal(refused.body.error.code, 'reload_refused');
  assert.deepEqual(refused.body.applied, []);
  assert.equal(refused.body.failures.length, 1);
  assert.equal(refused.body.failures[0].key, 'config');
  assert.equal(refused.body.failures[0].code, 'ERR_CONFIG_INVALID');
  assert.match(refused.body.failures[0].message, new RegExp(`${bp.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${line}: limits\\.max_packet_size: `));
  assert.equal(await announcedMaxPacketSize(t, url), 1000, 'the running limit stays');

  // Not TOML at all, through SIGHUP: logged with file, line and column; still nothing changes.
  await writeFile(bp.configFile, '[limits\nmax_packet_size = 2000\n');
  const error = await hangup(bp, 'configuration not reloaded; the running configuration stays');
  assert.equal(error['err']['code'], 'ERR_CONFIG_PARSE');
  assert.match(error['err']['message'], /tern\.toml:1:\d+: /);
  assert.equal(await announcedMaxPacketSize(t, url), 1000);
  const pub = await connectMqtt(t, url);
  await pub.publishAsync('b/kept', 'x', { qos: 1 });
  await eventually(async () => (await messageLogTopics(bp)).includes('b/kept'), 'the b/# filter still logging');

  // Fixed again: reloads.
  await writeFile(bp.configFile, configText(bp, httpPort, { ...second, maxPacketSize: 2000 }));
  const ok = await call(base, 'POST', '/api/v1/reload', {});
  assert.deepEqual([ok.status, ok.body.applied], [200, ['limits.max_packet_size']]);
  assert.equal(await announcedMaxPacketSize(t, url), 2000);
});

test('SIGHUP re-reads the password and ACL files; a broken password file keeps the previous one', T, async (t) => {
  const bp = await BrokerProcess.create(t, { backend: 'memory' });
  const dir = dirname(bp.configFile);
  const passwords = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  await writeFile(passwords, `alice:${await hashPassword('old-secret')}\n`);
  await writeFile(acl, 'user alice\ntopic readwrite x/#\n');
  const base = await readFile(bp.configFile, 'utf8');
  await writeFile(bp.configFile, `${base}\n[auth]\nallow_anonymous = false\npassword_file = ${JSON.stringify(passwords)}\nacl_file = ${JSON.stringify(acl)}\n`);
  await bp.start();

  /** The QoS the broker grants, 128 when it refuses (MQTT.js rejects then, with the SUBACK). */
  const granted = async (client: MqttClient, filter: string): Promise<number> => {
    try {
      return (await client.subscribeAsync(filter, { qos: 1 }))[0]!.qos;
    } catch (err) {
      const codes = (err as { packet?: { granted?: number[] } }).packet?.granted;
      if (codes?.[0] === undefined) throw err;
      return codes[0];
    }
  };
  const before = await connectMqtt(t, bp.url, { username: 'alice', password: 'old-secret' });
  assert.equal(await granted(before, 'x/1'), 1);
  assert.equal(await granted(before, 'y/1'), 128);

  await writeFile(passwords, `alice:${await hashPassword('new-secret')}\n`);
  await writeFile(acl, 'user alice\ntopic readwrite y/#\n');
  const entry = await hangup(bp);
  assert.deepEqual([entry['msg'], entry['applied'], entry['restartRequired']], ['configuration reloaded', [], []]);
  await assert.rejects(connectMqtt(t, bp.url, { username: 'alice', password: 'old-secret' }));
  const after = await connectMqtt(t, bp.url, { username: 'alice', password: 'new-secret' });
  assert.equal(await granted(after, 'y/1'), 1);
  assert.equal(await granted(after, 'x/1'), 128);

  await writeFile(passwords, 'this line has no colon\n');
  const failed = await hangup(bp);
  assert.equal(failed['msg'], 'configuration reloaded with failures');
  assert.equal(failed['failures'].length, 1);
  assert.equal(failed['failures'][0].key, 'auth');
  assert.equal(failed['failures'][0].code, 'ERR_AUTH_PASSWORD_FILE');
  assert.match(failed['failures'][0].message, /passwd:1: /);
  const still = await connectMqtt(t, bp.url, { username: 'alice', password: 'new-secret' });
  assert.equal(await granted(still, 'y/2'), 1);
});
