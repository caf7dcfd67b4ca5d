/**
 * Runs a real Debian `redis-server` for tests: on a free loopback port, with
 * no persistence (`--save '' --appendonly no`), in its own temp dir, killed in
 * the given `after`. Ready once it logged "Ready to accept connections" and
 * answered PING. If redis-server is missing the test fails with the command
 * that installs it (`npm test` and .ci/run install it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './net.js';

export const REDIS_INSTALL_COMMAND = 'apt-get install -y redis-server';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  /** Kills the server (SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

/** Where cleanup goes: a TestContext, or `{ after }` from node:test for a whole file. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

const READY_TIMEOUT_MS = 10_000;

function findRedisServer(): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    if (dir !== '' && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return null;
}

/** Sends PING and resolves when +PONG comes back. */
async function ping(port: number): Promise<void> {
  const socket = createConnection({ host: '127.0.0.1', port });
  try {
    await once(socket, 'connect');
    socket.write('PING\r\n');
    let reply = '';
    for await (const chunk of socket) {
      reply += (chunk as Buffer).toString();
      if (reply.includes('\r\n')) break;
    }
    if (!reply.startsWith('+PONG')) throw new Error(`redis-server answered PING with ${JSON.stringify(reply)}`);
  } finally {
    socket.destroy();
  }
}

export async function startRedisServer(cleanup: Cleanup): Promise<RedisServer> {
  const bin = findRedisServer();
  if (bin === null) {
    const how = process.env.CI === 'true' ? 'CI must install it (.ci/run)' : 'install it with';
    throw new Error(`redis-server is not installed; ${how}: sudo ${REDIS_INSTALL_COMMAND}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'tern-redis-'));
  let child: ChildProcess | null = null;
  let port = 0;

  const kill = async (): Promise<void> => {
    const c = child;
    child = null;
    if (c === null || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGKILL');
    await exited;
  };

  /** Spawns on `port`; resolves when ready, rejects if it exits or stalls first. */
  const spawnOn = async (p: number): Promise<void> => {
    const c = spawn(
      bin,
      ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`redis-server not ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`${err.message}\n${output}`));
      };
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          c.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        fail(new Error(`redis-server exited (${code ?? signal}) before it was ready`));
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      c.once('exit', onExit);
      c.once('error', fail);
    });
    await ping(p);
  };

  cleanup.after(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });

  // The free port may be taken before redis-server binds it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await spawnOn(port);
      break;
    } catch (err) {
      await kill();
      if (attempt === 3) throw err;
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop: kill,
    start: () => spawnOn(port),
  };
}
