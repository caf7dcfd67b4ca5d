/**
 * Starts the broker under test for one integration test.
 *
 * By default that is Tern, in-process, on a free port with memory storage and
 * silent logs. With `TERN_TEST_TARGET=mosquitto` it is a real `mosquitto`
 * process configured from the same options where mosquitto has an equivalent,
 * so the suite itself can be validated against a reference broker. Either way
 * the broker is shut down in `t.after`.
 *
 * `TERN_TEST_STORAGE=redis` (with `TERN_TEST_REDIS_URL`) runs Tern on the
 * Redis backend instead of memory, each broker under its own key prefix, and
 * `TERN_TEST_STORAGE=cluster` as a one-node cluster on it
 * (test/cluster/suite-on-redis.test.ts runs the suite both ways). Tests that
 * name a backend keep it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { TernConfigInput } from '../../src/config/schema.js';

export type TestTarget = 'tern' | 'mosquitto';

export const target: TestTarget = process.env['TERN_TEST_TARGET'] === 'mosquitto' ? 'mosquitto' : 'tern';
export const isMosquitto = target === 'mosquitto';

/** Skip reason for tests that use Tern's in-process API (broker.publish, events). */
export const TERN_ONLY = isMosquitto ? 'uses the Tern in-process API; not available under mosquitto' : false;

/**
 * The part of Tern's Broker API the tests use. Declared here (not imported)
 * so the suite still loads under mosquitto while src/broker is unfinished or broken.
 */
export interface TernBroker extends EventEmitter {
  listen(): Promise<Array<{ type: string; host: string; port: number }>>;
  close(): Promise<void>;
  publish(message: { topic: string; payload: Buffer | string; qos?: 0 | 1 | 2; retain?: boolean }): Promise<void>;
}

export interface StartedBroker {
  host: string;
  port: number;
  /** `mqtt://host:port` for MQTT.js / mosquitto clients. */
  url: string;
  /** The in-process Tern broker (absent under mosquitto). */
  broker?: TernBroker;
  /** The mosquitto child process (absent under Tern). */
  pid?: number;
  /**
   * Memory the broker holds, in bytes: for Tern, V8 heap + Buffer memory after
   * a forced GC (same process as the test, so compare deltas); for mosquitto, VmRSS.
   */
  memoryUsage(): Promise<number>;
  /** mosquitto's log so far (empty for Tern); handy when a test fails. */
  logs(): string;
}

import { freePort } from './net.js';

export { freePort };

const BROKER_MODULE = '../../src/broker/broker.js';

const TEST_STORAGE = process.env['TERN_TEST_STORAGE'] ?? 'memory';
let prefixCounter = 0;

/** The storage a test broker gets when the test names none. */
function defaultStorage(): NonNullable<TernConfigInput['storage']> {
  if (TEST_STORAGE !== 'redis' && TEST_STORAGE !== 'cluster') return { backend: 'memory' };
  const redisUrl = process.env['TERN_TEST_REDIS_URL'];
  if (redisUrl === undefined) throw new Error(`TERN_TEST_STORAGE=${TEST_STORAGE} needs TERN_TEST_REDIS_URL`);
  return { backend: 'redis', redisUrl, redisPrefix: `t${process.pid}-${++prefixCounter}-${Date.now().toString(36)}:` };
}

export async function startBroker(t: TestContext, options: TernConfigInput = {}): Promise<StartedBroker> {
  return isMosquitto ? startMosquitto(t, options) : startTern(t, options);
}

async function startTern(t: TestContext, options: TernConfigInput): Promise<StartedBroker> {
  // A variable specifier keeps tsc (and a mosquitto-only run) independent of src/broker's state.
  const mod = (await import(BROKER_MODULE)) as { createBroker(o: TernConfigInput): TernBroker };
  const broker = mod.createBroker({
    ...options,
    listeners: [{ type: 'tcp', port: 0, host: '127.0.0.1' }],
    storage: { ...defaultStorage(), ...options.storage },
    ...(options.storage?.backend === undefined && TEST_STORAGE === 'cluster' ? { cluster: { enabled: true, ...options.cluster } } : {}),
    log: { level: 'silent', ...options.log },
  });
  t.after(() => broker.close());
  const addresses = await broker.listen();
  const address = addresses[0];
  if (address === undefined) throw new Error('startBroker: Tern listen() returned no address');
  return {
    host: address.host,
    port: address.port,
    url: `mqtt://${address.host}:${address.port}`,
    broker,
    memoryUsage: async () => {
      // `external` is only settled a tick after GC; arrayBuffers (Buffers) is exact.
      forceGc();
      await new Promise((resolve) => setImmediate(resolve));
      forceGc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    },
    logs: () => '',
  };
}

let gcFn: (() => void) | undefined;
/** Runs a full GC even without --expose-gc, so memory deltas measure live data only. */
export function forceGc(): void {
  if (gcFn === undefined) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
}

/** mosquitto.conf lines for the Tern options that mosquitto has an equivalent for. */
export function mosquittoConfig(port: number, options: TernConfigInput): string {
  const limits = options.limits ?? {};
  const mqtt = options.mqtt ?? {};
  const lines = [
    'per_listener_settings false',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    'log_timestamp false',
    'allow_anonymous true',
  ];
  if (limits.maxInflight !== undefined) lines.push(`max_inflight_messages ${limits.maxInflight}`);
  if (limits.maxQueued !== undefined) lines.push(`max_queued_messages ${limits.maxQueued}`);
  if (limits.maxPacketSize !== undefined) lines.push(`max_packet_size ${limits.maxPacketSize}`);
  if (limits.maxKeepalive !== undefined && limits.maxKeepalive > 0) lines.push(`max_keepalive ${limits.maxKeepalive}`);
  if (mqtt.allowZeroLengthClientId !== undefined) lines.push(`allow_zero_length_clientid ${mqtt.allowZeroLengthClientId}`);
  if (mqtt.autoIdPrefix !== undefined) lines.push(`auto_id_prefix ${mqtt.autoIdPrefix}`);
  if (mqtt.retainAvailable !== undefined) lines.push(`retain_available ${mqtt.retainAvailable}`);
  // Listener-scoped options follow the listener line.
  lines.push(`listener ${port} 127.0.0.1`);
  if (limits.maxConnections !== undefined && limits.maxConnections > 0) lines.push(`max_connections ${limits.maxConnections}`);
  if (mqtt.maxQos !== undefined) lines.push(`max_qos ${mqtt.maxQos}`);
  return `${lines.join('\n')}\n`;
}

async function startMosquitto(t: TestContext, options: TernConfigInput): Promise<StartedBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-mosquitto-'));
  const port = await freePort();
  const confPath = join(dir, 'mosquitto.conf');
  await writeFile(confPath, mosquittoConfig(port, options));

  const child: ChildProcess = spawn('mosquitto', ['-c', confPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (s: string) => {
    log += s;
    if (log.length > 256 * 1024) log = log.slice(-128 * 1024);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  });

  // Ready when the log says so (a probe connection could count against max_connections).
  const deadline = Date.now() + 5000;
  while (!log.includes(' running')) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}:\n${log}`);
    if (Date.now() > deadline) throw new Error(`mosquitto did not start within 5 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('mosquitto: no pid');
  return {
    host: '127.0.0.1',
    port,
    url: `mqtt://127.0.0.1:${port}`,
    pid,
    memoryUsage: async () => {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+) kB/.exec(status);
      if (m === null || m[1] === undefined) throw new Error('mosquitto: no VmRSS');
      return Number(m[1]) * 1024;
    },
    logs: () => log,
  };
}
