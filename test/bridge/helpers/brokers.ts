/**
 * Real brokers for the bridge tests: Tern in-process (createBroker, memory
 * storage, port 0) and Mosquitto (the Debian binary on a free port with a
 * temp config, optionally persistent, stopped with the test).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBroker, type Broker } from '../../../src/broker/broker.js';
import { accepts, freePort } from '../../helpers/net.js';

export { freePort };

export interface TestBroker {
  readonly kind: 'tern' | 'mosquitto';
  readonly host: string;
  readonly port: number;
  /** The in-process Tern broker (undefined for mosquitto). */
  readonly broker: Broker | undefined;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Mosquitto; `persistent` keeps sessions and queued messages across stop()/start(). */
export async function startMosquitto(options: { persistent?: boolean; extra?: string[] } = {}): Promise<TestBroker> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-mosq-'));
  chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'max_queued_messages 0',
    'max_inflight_messages 100',
    'log_dest none',
    ...(options.persistent === true ? ['persistence true', `persistence_location ${dir}/`, 'autosave_interval 3600'] : []),
    ...(options.extra ?? []),
  ];
  writeFileSync(conf, lines.join('\n') + '\n');
  let child: ChildProcess | null = null;
  let stderr = '';
  const start = async (): Promise<void> => {
    const proc = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`mosquitto exited early: ${stderr}`);
      if (await accepts(port)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    proc.kill('SIGKILL');
    throw new Error(`mosquitto did not accept on ${port}: ${stderr}`);
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    child = null;
    if (proc === null || proc.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    kind: 'mosquitto',
    host: '127.0.0.1',
    port,
    broker: undefined,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Tern in-process with memory storage; restarts keep the port but (memory storage) not the sessions. */
export async function startTern(): Promise<TestBroker> {
  let port = 0;
  let broker: Broker | null = null;
  const start = async (): Promise<void> => {
    broker = createBroker({
      listeners: [{ type: 'tcp', host: '127.0.0.1', port }],
      storage: { backend: 'memory' },
      log: { level: 'silent' },
      limits: { maxInflight: Number(process.env.INF ?? 100), maxQueued: 1_000_000 },
    } as Parameters<typeof createBroker>[0]);
    const [address] = await broker.listen();
    port = address!.port;
  };
  await start();
  const handle: TestBroker = {
    kind: 'tern',
    host: '127.0.0.1',
    get port() {
      return port;
    },
    get broker() {
      return broker ?? undefined;
    },
    stop: async () => {
      const b = broker;
      broker = null;
      await b?.close();
    },
    start,
    close: async () => {
      const b = broker;
      broker = null;
      await b?.close();
    },
  };
  return handle;
}
