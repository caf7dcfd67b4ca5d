/**
 * A real Mosquitto for client and bench tests: a free port on 127.0.0.1, a
 * temp config, and stop/start for restart tests. Every wait is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from '../helpers/net.js';

export { freePort };

export interface Mosquitto {
  readonly host: string;
  readonly port: number;
  readonly dir: string;
  /** SIGTERM and wait for exit (mosquitto saves its persistence file on the way out). */
  stop(): Promise<void>;
  /** Start again on the same port with the same config. */
  start(): Promise<void>;
  /** Stop (if running) and remove the temp dir. */
  close(): Promise<void>;
}

/** `extra` lines are appended to the config (e.g. persistence settings). */
export async function startMosquitto(extra: readonly string[] = []): Promise<Mosquitto> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'tern-mosq-'));
  // Started as root, mosquitto drops to the `mosquitto` user: let it write its persistence file here.
  chmodSync(dir, 0o777);
  const conf = join(dir, 'mosquitto.conf');
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', ...extra.map((l) => l.replaceAll('$DIR', dir))];
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
    throw new Error(`mosquitto did not accept on ${port} within 5 s: ${stderr}`);
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
    host: '127.0.0.1',
    port,
    dir,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
