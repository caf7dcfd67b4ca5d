/**
 * Tern as a child process, for the storage tests: the real CLI
 * (`node --import tsx src/cli/main.ts -c FILE`) on a data directory that
 * outlives the process, so a test can SIGKILL it (a crash), SIGTERM it (a
 * clean shutdown) and start it again on the same directory and the SAME port,
 * letting reconnecting clients find it at the address they know.
 *
 * Every wait is bounded; `t.after` kills a process still running and removes
 * the temporary directory.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');
const HOST = '127.0.0.1';
/** Output kept per process (the tail), for failure messages. */
const MAX_OUTPUT = 256 * 1024;

/** Where cleanup goes: a node:test TestContext, or anything with the same `after` (benchmarks). */
export interface AfterHooks {
  after(fn: () => unknown): void;
}

export interface BrokerProcessOptions {
  /** Data directory (storage.path); default `<temp dir>/data`. */
  dataDir?: string;
  /** Port used by every start; default stablePort(). */
  port?: number;
  /** storage.backend; default 'sqlite'. */
  backend?: 'sqlite' | 'memory' | 'redis';
  /** More lines inside `[storage]` (e.g. `redis_url = "..."`). */
  storageToml?: string;
  /** storage.durability; default 'normal'. */
  durability?: 'full' | 'normal';
  /** More TOML sections appended to the config file (e.g. `[limits]\nmax_queued = 100000\n`). */
  toml?: string;
  /** Extra CLI arguments for every start (e.g. `['--repair']`). */
  args?: readonly string[];
  /** How long start() waits for the "started" log line; default 30 s (a loaded machine compiles slowly). */
  startTimeoutMs?: number;
  /** Node options before the script (e.g. `['--inspect=127.0.0.1:0']` to read the heap from outside). */
  nodeArgs?: readonly string[];
}

/** The process exited (or was killed) before it listened. */
export class BrokerExitError extends Error {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** stdout + stderr of the process. */
  readonly output: string;

  constructor(exitCode: number | null, signal: NodeJS.Signals | null, output: string) {
    super(`tern exited before listening (code ${exitCode}, signal ${signal}):\n${output}`);
    this.exitCode = exitCode;
    this.signal = signal;
    this.output = output;
  }
}

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

export class BrokerProcess {
  readonly host = HOST;
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly configFile: string;
  /** Processes started so far (including failed starts). */
  starts = 0;
  readonly #args: readonly string[];
  readonly #nodeArgs: readonly string[];
  readonly #startTimeoutMs: number;
  #child: ChildProcess | null = null;
  #exited: Promise<ExitResult> | null = null;
  #output = '';

  private constructor(port: number, dataDir: string, configFile: string, opts: BrokerProcessOptions) {
    this.port = port;
    this.url = `mqtt://${HOST}:${port}`;
    this.dataDir = dataDir;
    this.configFile = configFile;
    this.#args = opts.args ?? [];
    this.#nodeArgs = opts.nodeArgs ?? [];
    this.#startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  }

  /** Writes the config (to a new temp dir) and registers cleanup; does not start. */
  static async create(t: AfterHooks, opts: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    const dir = await mkdtemp(join(tmpdir(), 'tern-proc-'));
    const dataDir = opts.dataDir ?? join(dir, 'data');
    const port = opts.port ?? (await stablePort());
    const configFile = join(dir, 'tern.toml');
    await writeFile(configFile, brokerToml(port, dataDir, opts));
    const broker = new BrokerProcess(port, dataDir, configFile, opts);
    t.after(async () => {
      await broker.kill();
      await rm(dir, { recursive: true, force: true });
    });
    return broker;
  }

  /** create() + start(). */
  static async start(t: AfterHooks, opts: BrokerProcessOptions = {}): Promise<BrokerProcess> {
    const broker = await BrokerProcess.create(t, opts);
    await broker.start();
    return broker;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** stdout + stderr of the current (or last) process. */
  output(): string {
    return this.#output;
  }

  /**
   * Spawns the broker and resolves once it logged that it listens on `port`
   * (logged after every listener is bound, so connections are accepted).
   * Rejects with BrokerExitError if it exits first.
   */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    if (this.#child !== null) throw new Error('BrokerProcess.start: already running');
    const child = this.#spawn(extraArgs);
    const exited = this.#exited!;
    let timer: NodeJS.Timeout | undefined;
    try {
      const ready = new Promise<'ready'>((resolve) => {
        let pending = '';
        const onData = (chunk: string): void => {
          pending += chunk;
          let nl: number;
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl);
            pending = pending.slice(nl + 1);
            if (this.#isStartedLine(line)) {
              child.stdout!.off('data', onData);
              resolve('ready');
              return;
            }
          }
        };
        child.stdout!.on('data', onData);
      });
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), this.#startTimeoutMs);
      });
      const result = await Promise.race([ready, exited, timeout]);
      if (result === 'ready') return;
      if (result === 'timeout') {
        await this.kill();
        throw new Error(`tern did not start within ${this.#startTimeoutMs} ms:\n${this.#output}`);
      }
      throw new BrokerExitError(result.code, result.signal, result.output);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs the broker expecting it to stop by itself (a refused start); resolves
   * with its exit. If it is still running after `timeoutMs` it is killed and
   * the promise rejects with its output.
   */
  async runToExit(extraArgs: readonly string[] = [], timeoutMs = 30_000): Promise<ExitResult> {
    if (this.#child !== null) throw new Error('BrokerProcess.runToExit: already running');
    this.#spawn(extraArgs);
    const exited = this.#exited!;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (result !== null) return result;
    await this.kill();
    throw new Error(`tern was expected to exit but still ran after ${timeoutMs} ms:\n${this.#output}`);
  }

  /** SIGKILL (a crash: no flush, no lock release) and wait for the exit. No-op when not running. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    child.kill('SIGKILL');
    await this.#exited;
  }

  /**
   * SIGTERM (graceful shutdown) and wait for the exit; resolves with the exit
   * code. A process still running after `timeoutMs` is SIGKILLed and the
   * promise rejects.
   */
  async stop(timeoutMs = 20_000): Promise<number | null> {
    const child = this.#child;
    if (child === null) return null;
    const exited = this.#exited!;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const result = await Promise.race([exited, timeout]);
    clearTimeout(timer);
    if (result !== null) return result.code;
    await this.kill();
    throw new Error(`tern did not exit within ${timeoutMs} ms of SIGTERM:\n${this.#output}`);
  }

  /** Stop (SIGTERM, or SIGKILL with `crash`) and start again on the same data dir and port. */
  async restart(o: { crash?: boolean } = {}): Promise<void> {
    if (o.crash === true) await this.kill();
    else await this.stop();
    await this.start();
  }

  #spawn(extraArgs: readonly string[]): ChildProcess {
    this.#output = '';
    this.starts++;
    const child = spawn(process.execPath, [...this.#nodeArgs, '--import', 'tsx', MAIN, '-c', this.configFile, ...this.#args, ...extraArgs], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    const append = (chunk: string): void => {
      this.#output += chunk;
      if (this.#output.length > MAX_OUTPUT) this.#output = this.#output.slice(-MAX_OUTPUT / 2);
    };
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    // A test process that dies must not leave brokers behind.
    const reap = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', reap);
    this.#exited = (async (): Promise<ExitResult> => {
      const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
      process.off('exit', reap);
      if (this.#child === child) this.#child = null;
      return { code, signal, output: this.#output };
    })();
    return child;
  }

  #isStartedLine(line: string): boolean {
    if (!line.startsWith('{')) return false;
    try {
      const entry = JSON.parse(line) as { msg?: unknown; addresses?: Array<{ port?: unknown }> };
      return (
        typeof entry.msg === 'string' &&
        entry.msg.includes(' started, listening on ') &&
        Array.isArray(entry.addresses) &&
        entry.addresses.some((a) => a.port === this.port)
      );
    } catch {
      return false;
    }
  }
}

/** The config file: one TCP listener, sqlite storage on `dataDir`, JSON logs at info (for the start-up line). */
export function brokerToml(port: number, dataDir: string, opts: BrokerProcessOptions = {}): string {
  return [
    '[[listeners]]',
    'type = "tcp"',
    `host = "${HOST}"`,
    `port = ${port}`,
    '',
    '[storage]',
    `backend = "${opts.backend ?? 'sqlite'}"`,
    `path = ${JSON.stringify(dataDir)}`,
    `durability = "${opts.durability ?? 'normal'}"`,
    opts.storageToml ?? '',
    '',
    '[log]',
    'level = "info"',
    'format = "json"',
    '',
    opts.toml ?? '',
  ].join('\n');
}

/**
 * A free port that stays usable across restarts. A port from the kernel's
 * ephemeral range (what binding port 0 returns) can be taken, while the broker
 * is down, as the local port of some outgoing connection, and the restart then
 * fails with EADDRINUSE; so this picks a free port just below that range,
 * checked by binding it. Falls back to binding port 0.
 */
export async function stablePort(): Promise<number> {
  let low = 32768;
  try {
    const [first] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    if (first !== undefined && Number(first) > 2048) low = Number(first);
  } catch {
    // Not Linux: assume the IANA-ish default.
  }
  const from = Math.max(1024, low - 10_000);
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = from + Math.floor(Math.random() * (low - from));
    if (await canBind(port)) return port;
  }
  return bindPortZero();
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function bindPortZero(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('stablePort: no address'));
      });
    });
  });
}
