/** Shared plumbing of the bridge benchmarks: child processes, JSON-line events, result lines (P10). */
import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

export const quick = process.argv.includes('--quick');

const meta = {
  sha: (() => {
    try {
      return execSync('git rev-parse --short HEAD', { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    } catch {
      return 'unknown';
    }
  })(),
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
};

export function emit(result: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ bench: 'bridge', ...result, ...meta })}\n`);
}

export const script = (name: string): string => fileURLToPath(new URL(`./${name}`, import.meta.url));

export interface ChildEvent {
  t: number;
  event?: string;
  [key: string]: unknown;
}

/** A `node --import tsx` child whose stdout is JSON lines. */
export class JsonChild {
  readonly proc: ChildProcess;
  readonly events: ChildEvent[] = [];
  readonly #waiters: Array<{ pred: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }> = [];
  stderr = '';

  constructor(file: string, args: string[]) {
    // BENCH_CHILD_FLAGS adds node flags to the bridge child, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const flags = file === 'bridge-child.ts' ? (process.env['BENCH_CHILD_FLAGS'] ?? '').split(' ').filter((f) => f !== '') : [];
    this.proc = spawn(process.execPath, [...flags, '--import', 'tsx', script(file), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e: ChildEvent;
        try {
          e = JSON.parse(line) as ChildEvent;
        } catch {
          continue;
        }
        this.events.push(e);
        for (const w of [...this.#waiters]) {
          if (w.pred(e)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(e);
          }
        }
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
  }

  wait(pred: (e: ChildEvent) => boolean, timeoutMs: number): Promise<ChildEvent> {
    const found = this.events.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms; stderr: ${this.stderr.slice(-500)}`)), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  exited(): Promise<number | null> {
    if (this.proc.exitCode !== null) return Promise.resolve(this.proc.exitCode);
    return new Promise((resolve) => this.proc.once('exit', (code) => resolve(code)));
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const done = this.exited();
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  }
}
