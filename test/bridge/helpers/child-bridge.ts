/**
 * `tern bridge` as a child process (`node --import tsx bridge-entry.ts -c FILE`),
 * for the SIGKILL/SIGTERM tests and the kill soak script.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./bridge-entry.ts', import.meta.url));

export interface ChildConfig {
  dir: string;
  local: { host: string; port: number };
  remote: { host: string; port: number };
  durability?: 'full' | 'normal';
  inflightWindow?: number;
  maxMessages?: number;
}

/** Write the bridge TOML for `c` into its dir; returns the path. */
export function writeBridgeToml(c: ChildConfig): string {
  const file = join(c.dir, 'bridge.toml');
  writeFileSync(
    file,
    `name = "edge1"

[local]
host = "${c.local.host}"
port = ${c.local.port}
reconnect = { min_delay_ms = 50, max_delay_ms = 300 }

[remote]
host = "${c.remote.host}"
port = ${c.remote.port}
keepalive = 2
ack_timeout_ms = 2000
connect_timeout_ms = 2000
inflight_window = ${c.inflightWindow ?? 100}
reconnect = { min_delay_ms = 50, max_delay_ms = 300 }

[cache]
dir = "${c.dir}"
durability = "${c.durability ?? 'full'}"
max_messages = ${c.maxMessages ?? 1_000_000}

[log]
level = "warn"

[[forward]]
local = "sensors/#"
remote_prefix = "devices/edge1/"
qos = 1
`,
  );
  return file;
}

export class ChildBridge {
  readonly #config: string;
  readonly #env: NodeJS.ProcessEnv;
  #proc: ChildProcess | null = null;
  output = '';

  /** `env`: the child's environment (default: this process's). */
  constructor(configFile: string, env: NodeJS.ProcessEnv = process.env) {
    this.#config = configFile;
    this.#env = env;
  }

  get running(): boolean {
    return this.#proc !== null && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  start(): void {
    const proc = spawn(process.execPath, ['--import', 'tsx', ENTRY, '-c', this.#config], { stdio: ['ignore', 'pipe', 'pipe'], env: this.#env });
    this.#proc = proc;
    proc.stdout?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
    proc.stderr?.on('data', (d: Buffer) => {
      this.output += d.toString();
    });
  }

  /** Send `signal` and wait (bounded) for the exit; returns the exit code (null when killed by the signal). */
  async stop(signal: 'SIGKILL' | 'SIGTERM', timeoutMs = 10_000): Promise<number | null> {
    const proc = this.#proc;
    if (proc === null) return null;
    this.#proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}
