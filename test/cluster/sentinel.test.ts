/**
 * Redis behind Sentinel: a real redis-server, a real sentinel (redis-server
 * --sentinel) watching it, and two cluster nodes that find the primary
 * through `redis+sentinel://` URLs; a message crosses nodes.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { accepts, freePort } from '../helpers/net.js';
import { clientId, connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { startRedisServer } from '../helpers/redis-server.js';
import { clusterPrefix, startNode } from './helpers.js';

const redis = await startRedisServer({ after });

async function startSentinel(redisPort: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  await writeFile(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor primary 127.0.0.1 ${redisPort} 1\nsentinel down-after-milliseconds primary 1000\n`);
  const child = spawn('redis-server', [conf, '--sentinel'], { cwd: dir, stdio: 'ignore' });
  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100 && !(await accepts(port)); i++) await sleep(50);
  return port;
}

test('cluster nodes reach Redis through Sentinel and route between each other', async (t) => {
  const sentinelPort = await startSentinel(redis.port);
  const url = `redis+sentinel://127.0.0.1:${sentinelPort}/primary`;
  const prefix = clusterPrefix();
  const a = await startNode(t, url, prefix, 's1');
  const b = await startNode(t, url, prefix, 's2');
  const sub = await connectMqtt(t, b.url, { clientId: clientId('s') });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('via/sentinel', { qos: 1 });
  const pub = await connectMqtt(t, a.url, { clientId: clientId('p') });
  await pub.publishAsync('via/sentinel', 'found the primary', { qos: 1 });
  const [m] = await got.waitFor(1, 5000);
  assert.equal(m!.payload, 'found the primary');
});
