import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import type { BenchResult } from '../../src/bench/report.js';
import { runBench } from '../../src/cli/bench.js';
import { freePort, startMosquitto, type Mosquitto } from '../client/mosquitto.js';

let broker: Mosquitto;
before(async () => {
  broker = await startMosquitto();
});
after(async () => {
  await broker.close();
});

async function bench(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await runBench(argv, { stdout, stderr });
  return { code, stdout: out, stderr: err };
}

function checkLatency(r: BenchResult): void {
  const l = r.latencyMs;
  assert.ok(l !== null, 'latency measured');
  assert.ok(l.count > 0);
  assert.ok(l.minMs <= l.p50Ms && l.p50Ms <= l.p90Ms && l.p90Ms <= l.p99Ms && l.p99Ms <= l.maxMs, JSON.stringify(l));
}

test('pairs --json: messages flow between every pair with no errors', { timeout: 15000 }, async () => {
  const { code, stdout, stderr } = await bench(['pairs', '-p', String(broker.port), '-c', '2', '-d', '1.2', '--json']);
  const r = JSON.parse(stdout) as BenchResult;
  assert.equal(code, 0, stderr);
  assert.equal(r.scenario, 'pairs');
  assert.deepEqual(r.clients, { requested: 4, connected: 4, failed: 0 });
  assert.equal(r.publishers, 2);
  assert.equal(r.subscribers, 2);
  assert.ok(r.sent > 0 && r.sendRate > 0 && r.recvRate > 0, stdout);
  assert.equal(r.expected, r.sent);
  assert.ok(r.received > 0 && r.received <= r.sent);
  assert.equal(r.errors, 0);
  assert.ok(r.elapsedS >= 1.1);
  checkLatency(r);
  assert.match(stderr, /\[pairs run 1s\] conns 4\/4 {2}sent [\d,]+\/s {2}recv [\d,]+\/s/, 'a progress line each second');
});

test('latency --json at a fixed rate: every QoS 1 message arrives and percentiles are ordered', { timeout: 15000 }, async () => {
  const { code, stdout, stderr } = await bench([
    'latency', '-p', String(broker.port), '-q', '1', '-r', '50', '-d', '1', '-V', '4', '--json', '--quiet',
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '', '--quiet prints no progress');
  const r = JSON.parse(stdout) as BenchResult;
  assert.equal(r.scenario, 'latency');
  assert.equal(r.version, 4);
  assert.equal(r.rate, 50);
  assert.equal(r.received, r.sent);
  // 50/s for ~1 s, plus the message sent at t = 0.
  assert.ok(r.sent >= 40 && r.sent <= 60, `sent ${r.sent}`);
  checkLatency(r);
  assert.equal(r.latencyMs?.count, r.received);
});

test('fanout counts one delivery per subscriber', { timeout: 15000 }, async () => {
  const { code, stdout } = await bench(['fanout', '-p', String(broker.port), '-c', '3', '-q', '1', '-d', '0.5', '--json', '--quiet']);
  assert.equal(code, 0);
  const r = JSON.parse(stdout) as BenchResult;
  assert.equal(r.subscribers, 3);
  assert.equal(r.expected, r.sent * 3);
  assert.equal(r.received, r.expected);
});

test('conn connects every client and reports the connect rate', { timeout: 15000 }, async () => {
  const { code, stdout } = await bench(['conn', '-p', String(broker.port), '-c', '50', '-d', '0.2', '--json', '--quiet']);
  assert.equal(code, 0);
  const r = JSON.parse(stdout) as BenchResult;
  assert.deepEqual(r.clients, { requested: 50, connected: 50, failed: 0 });
  assert.ok(r.connect.ratePerS > 0);
  assert.equal(r.connect.timeMs?.count, 50);
  assert.equal(r.sent, 0);
});

test('connect failures are counted and make the exit code 1', { timeout: 15000 }, async () => {
  const port = await freePort();
  const { code, stdout } = await bench(['pub', '-p', String(port), '-c', '2', '-d', '0.1', '--json', '--quiet']);
  assert.equal(code, 1);
  const r = JSON.parse(stdout) as BenchResult;
  assert.deepEqual(r.clients, { requested: 2, connected: 0, failed: 2 });
  assert.ok(r.errorSamples.length > 0);
});

test('a bad command line prints the usage and exits 2', async () => {
  const { code, stderr } = await bench(['pairs', '--qos', '7']);
  assert.equal(code, 2);
  assert.match(stderr, /--qos must be an integer in 0\.\.2/);
  assert.match(stderr, /Usage: tern bench/);
});
