/**
 * Start and stop the brokers under test, each a child process pinned to
 * core 0 with a fresh temporary directory:
 * - tern: Tern's CLI, `-p PORT`, log level warn, memory storage (or sqlite
 *   in the directory for the persistent-session scenario);
 * - mosquitto: `mosquitto -c conf` with `listener PORT 127.0.0.1`,
 *   `allow_anonymous true` and its defaults otherwise (plus `persistence
 *   true` for the persistent-session scenario);
 * - aedes: bench/compare/aedes-server.ts (Aedes from node_modules over net).
 * Each broker's stdout/stderr goes to a log file in its directory.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, pinned, ROOT, ternCli, tsScript, waitForPort } from './proc.js';

export const BROKERS = ['tern', 'mosquitto', 'aedes'] as const;
export type BrokerName = (typeof BROKERS)[number];

export type Storage = 'memory' | 'persistent';

export interface BrokerLaunch {
  name: BrokerName;
  storage: Storage;
  /** Core to pin the broker to (null = not pinned). */
  core: number | null;
  /** Tern only: write a V8 CPU profile into this directory on exit. */
  cpuProfDir?: string;
  /**
   * Disable Nagle's algorithm on Mosquitto (`set_tcp_nodelay true`) and Aedes
   * (`net.createServer({ noDelay: true })`) as Tern always does. Off by
   * default: both brokers' defaults leave Nagle on.
   */
  noDelay?: boolean;
}

export interface RunningBroker {
  readonly name: BrokerName;
  readonly pid: number;
  readonly port: number;
  readonly dir: string;
  /** The last lines of the broker's log. */
  logTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; removes the directory unless `keepDir`. */
  stop(graceMs?: number, keepDir?: boolean): Promise<void>;
}

let mosquittoPath: string | null | undefined;

export function findMosquitto(): string | null {
  if (mosquittoPath === undefined) {
    mosquittoPath = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto', '/usr/local/sbin/mosquitto', '/usr/local/bin/mosquitto'].find((p) => existsSync(p)) ?? null;
  }
  return mosquittoPath;
}

/** Install Debian's mosquitto when it is missing and we are root; returns whether it is there. */
export function ensureMosquitto(log: (line: string) => void): boolean {
  if (findMosquitto() !== null) return true;
  if (process.getuid?.() !== 0) {
    log('mosquitto is not installed (apt-get install mosquitto); skipping it');
    return false;
  }
  log('mosquitto missing: apt-get install -y mosquitto');
  try {
    execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'mosquitto'], { stdio: 'inherit' });
  } catch {
    log('apt-get install mosquitto failed; skipping it');
  }
  mosquittoPath = undefined;
  return findMosquitto() !== null;
}

export function brokerVersions(): Record<string, string> {
  const versions: Record<string, string> = {};
  const mosquitto = findMosquitto();
  if (mosquitto !== null) {
    try {
      execFileSync(mosquitto, ['-h'], { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      // `mosquitto -h` exits 3 after printing its version.
      const out = String((err as { stdout?: Buffer }).stdout ?? '');
      versions.mosquitto = /mosquitto version (\S+)/.exec(out)?.[1] ?? 'unknown';
    }
    versions.mosquitto ??= 'unknown';
  }
  try {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules/aedes/package.json'), 'utf8')) as { version: string };
    versions.aedes = pkg.version;
  } catch {
    versions.aedes = 'missing';
  }
  const tern = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  versions.tern = tern.version;
  return versions;
}

function command(launch: BrokerLaunch, port: number, dir: string): [string, string[]] {
  switch (launch.name) {
    case 'tern': {
      const persistent = launch.storage === 'persistent';
      const conf = join(dir, 'tern.toml');
      writeFileSync(
        conf,
        [
          '[storage]',
          persistent ? 'backend = "sqlite"' : 'backend = "memory"',
          `path = ${JSON.stringify(join(dir, 'data'))}`,
          '[log]',
          'level = "warn"',
          'format = "json"',
          '',
        ].join('\n'),
      );
      const prof = launch.cpuProfDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', launch.cpuProfDir];
      return pinned(launch.core, process.execPath, [...prof, ...ternCli(), '-c', conf, '-p', String(port)]);
    }
    case 'mosquitto': {
      const conf = join(dir, 'mosquitto.conf');
      const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true'];
      if (launch.noDelay === true) lines.push('set_tcp_nodelay true');
      if (launch.storage === 'persistent') {
        // Run as root, mosquitto drops to the `mosquitto` user: the directory must be writable by it.
        chmodSync(dir, 0o777);
        lines.push('persistence true', `persistence_location ${dir}/`);
      }
      writeFileSync(conf, `${lines.join('\n')}\n`);
      return pinned(launch.core, findMosquitto() ?? 'mosquitto', ['-c', conf]);
    }
    case 'aedes':
      return pinned(launch.core, process.execPath, [...tsScript('bench/compare/aedes-server.ts'), String(port), ...(launch.noDelay === true ? ['--nodelay'] : [])]);
  }
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function startBroker(launch: BrokerLaunch): Promise<RunningBroker> {
  const dir = mkdtempSync(join(tmpdir(), `tern-bench-${launch.name}-`));
  const port = await freePort();
  const [cmd, args] = command(launch, port, dir);
  const logFile = join(dir, 'broker.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const logTail = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };
  try {
    await waitForPort(port, child, 30_000);
  } catch (err) {
    child.kill('SIGKILL');
    await waitExit(child, 2000);
    const tail = logTail();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${launch.name}: ${(err as Error).message}\n${tail}`);
  }
  return {
    name: launch.name,
    pid: child.pid!,
    port,
    dir,
    logTail,
    async stop(graceMs = 15_000, keepDir = false): Promise<void> {
      child.kill('SIGTERM');
      if (!(await waitExit(child, graceMs))) {
        child.kill('SIGKILL');
        await waitExit(child, 5000);
      }
      if (!keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
