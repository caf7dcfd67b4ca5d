/**
 * "A single node with the Redis backend behaves exactly as a single node with
 * SQLite": the integration suite's broker-behaviour files run again with
 * every test broker on a real redis-server (TERN_TEST_STORAGE=redis), and
 * once more as a one-node cluster on it (TERN_TEST_STORAGE=cluster; see
 * test/helpers/broker.ts). Each run is a child `node --test` process; its
 * output is shown when it fails.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { startRedisServer } from '../helpers/redis-server.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FILES = [
  'connect',
  'keepalive',
  'limits',
  'qos-flows',
  'retained',
  'session-persistence',
  'shared-strategies',
  'subscribe',
  'v5-features',
  'v5-interop',
  'wildcards',
  'will',
  'mosquitto-clients',
  'broker-api',
  'protocol-errors',
  'slow-consumer',
].map((name) => `test/integration/${name}.test.ts`);

const redis = await startRedisServer({ after });

/** Each failing test's TAP block (name, error, location), not the whole output. */
function failures(output: string): string {
  const lines = output.split('\n');
  const out: string[] = [];
  lines.forEach((line, i) => {
    if (/^\s*not ok /.test(line)) out.push(...lines.slice(i, i + 14));
  });
  return out.length > 0 ? out.join('\n').slice(0, 8000) : output.slice(-4000);
}

function withoutTestContext(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const copy = { ...env };
  delete copy['NODE_TEST_CONTEXT'];
  return copy;
}

async function runSuite(storage: 'redis' | 'cluster'): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=tap', ...FILES], {
    cwd: ROOT,
    // Without NODE_TEST_CONTEXT the child is a test runner of its own, not a reporter for this one.
    env: { ...withoutTestContext(process.env), TERN_TEST_STORAGE: storage, TERN_TEST_REDIS_URL: redis.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, output };
}

for (const storage of ['redis', 'cluster'] as const) {
  test(`the integration suite passes with every broker on ${storage === 'redis' ? 'the Redis backend' : 'a one-node cluster'}`, { timeout: 400_000 }, async () => {
    const { code, output } = await runSuite(storage);
    assert.equal(code, 0, `suite failed on ${storage}:\n${failures(output)}`);
    // The suite really ran: the summary counts its tests.
    const ran = Number(/^# pass (\d+)$/m.exec(output)?.[1] ?? 0);
    assert.ok(ran >= 90, `the suite ran (${ran} passed):\n${output.slice(-2000)}`);
  });
}
