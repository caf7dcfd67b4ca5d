/**
 * Tern nodes on a real Redis Cluster: three redis-server processes in
 * cluster mode joined with `redis-cli --cluster create`, reached through a
 * `redis+cluster://` URL with a hash-tagged key prefix. Cross-node pub/sub and
 * a persistent session resuming on the other node.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { resolveConfig } from '../../src/config/load.js';
import { createServer } from 'node:net';
import { accepts } from '../helpers/net.js';
import { clientId, connectMqtt, MessageCollector, mqttClient } from '../helpers/mqtt-client.js';
import { startNode } from './helpers.js';

/** Is `port` free to bind on 127.0.0.1? */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10000) is free too, below the ephemeral range. */
async function clusterPort(taken: readonly number[]): Promise<number> {
  for (;;) {
    const port = 15000 + Math.floor(Math.random() * 15000);
    if (taken.includes(port) || taken.includes(port + 10000) || taken.includes(port - 10000)) continue;
    if ((await bindable(port)) && (await bindable(port + 10000))) return port;
  }
}

async function startRedisCluster(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-rcluster-'));
  const children: ChildProcess[] = [];
  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await once(c, 'exit');
      }
    }
    await rm(dir, { recursive: true, force: true });
  });
  const ports: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await clusterPort(ports);
    const cwd = join(dir, String(port));
    await mkdir(cwd);
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--save', '', '--appendonly', 'no'];
    children.push(spawn('redis-server', args, { cwd, stdio: 'ignore' }));
    ports.push(port);
  }
  for (const port of ports) for (let i = 0; i < 100 && !(await accepts(port)); i++) await sleep(50);
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(create.status, 0, `redis-cli --cluster create failed: ${create.stdout}${create.stderr}`);
  // Wait until every node agrees the cluster is up.
  for (let i = 0; i < 100; i++) {
    const states = ports.map((p) => spawnSync('redis-cli', ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }).stdout);
    if (states.every((s) => s.includes('cluster_state:ok'))) break;
    await sleep(100);
  }
  return `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`;
}

test('a Redis Cluster needs a hash-tagged key prefix', () => {
  assert.throws(
    () => resolveConfig({ storage: { backend: 'redis', redisUrl: 'redis+cluster://127.0.0.1:7000', redisPrefix: 'tern:' } }),
    /redisPrefix[\s\S]*hash tag/,
  );
  resolveConfig({ storage: { backend: 'redis', redisUrl: 'redis+cluster://127.0.0.1:7000', redisPrefix: '{tern}:' } });
});

test('cluster nodes on a Redis Cluster route between each other and resume sessions', { timeout: 90_000 }, async (t) => {
  const url = await startRedisCluster();
  const prefix = `{t${Date.now().toString(36)}}:`;
  const a = await startNode(t, url, prefix, 'rc1');
  const b = await startNode(t, url, prefix, 'rc2');
  const sub = await connectMqtt(t, b.url, { clientId: clientId('s') });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('rc/#', { qos: 1 });
  const pub = await connectMqtt(t, a.url, { clientId: clientId('p') });
  await pub.publishAsync('rc/1', 'across the cluster', { qos: 1 });
  const [m] = await got.waitFor(1, 5000);
  assert.equal(m!.payload, 'across the cluster');

  const id = clientId('durable');
  const first = await connectMqtt(t, a.url, { clientId: id, clean: false });
  await first.subscribeAsync('rc/q', { qos: 1 });
  await first.endAsync();
  await pub.publishAsync('rc/q', 'queued', { qos: 1 });
  const again = mqttClient(t, b.url, { clientId: id, clean: false });
  const gotAgain = new MessageCollector(again);
  const present = await new Promise<boolean>((resolve) => again.once('connect', (p) => resolve(p.sessionPresent)));
  assert.equal(present, true);
  const [q] = await gotAgain.waitFor(1, 5000);
  assert.equal(q!.payload, 'queued');
});
