/**
 * Process plumbing for the comparison runs: free ports, readiness, CPU
 * pinning, /proc readings (RSS, CPU time) and a sampler that watches the
 * broker and the generator while a run is in progress.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (bench/compare/ is two levels down). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** How to start Tern's CLI: the build if there is one, else the sources through tsx. */
export function ternCli(): string[] {
  const built = join(ROOT, 'dist/cli/main.js');
  return existsSync(built) ? [built] : ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
}

/** `node --import tsx <script>` for a TypeScript script of the bench. */
export function tsScript(relative: string): string[] {
  return ['--import', 'tsx', join(ROOT, relative)];
}

let tasksetPath: string | null | undefined;

/** Pinning is used when taskset exists and the machine has at least two cores. */
export function canPin(): boolean {
  if (tasksetPath === undefined) {
    tasksetPath = null;
    for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
      if (existsSync(join(dir, 'taskset'))) tasksetPath = join(dir, 'taskset');
    }
  }
  return tasksetPath !== null && os.cpus().length >= 2;
}

/** `[command, ...args]` prefixed with `taskset -c core` when pinning is possible. */
export function pinned(core: number | null, command: string, args: readonly string[]): [string, string[]] {
  if (core === null || !canPin()) return [command, [...args]];
  return [tasksetPath!, ['-c', String(core), command, ...args]];
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves once something accepts TCP connections on `port`; rejects when `child` exits first or on timeout. */
export async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`process exited (${child.exitCode ?? child.signalCode}) before listening on ${port}`);
    }
    if (await tryConnect(port)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listened on ${port} within ${timeoutMs} ms`);
}

/** Resident set size of a process in KiB (VmRSS), or null if it is gone. */
export function readRssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time of a process in seconds, or null if it is gone. */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return null;
  }
}

export interface CpuUse {
  /** CPU time / wall time over the whole watch, in % of one core. */
  meanPct: number;
  /** Highest use over any window of about one second, in % of one core. */
  peakPct: number;
}

interface Track {
  pid: number;
  /** Windows starting before this (performance.now() ms) do not count for the peak. */
  peakFrom: number;
  samples: Array<[atMs: number, cpuS: number]>;
  peakRssKiB: number;
}

/**
 * Samples CPU time (and RSS) of named processes every `intervalMs`. The
 * peak one-second CPU use is the figure that says who saturated: a process
 * near 100% of its core is the bottleneck.
 */
export class ProcSampler {
  readonly #tracks = new Map<string, Track>();
  readonly #timer: NodeJS.Timeout;

  constructor(intervalMs = 250) {
    this.#timer = setInterval(() => this.#sample(), intervalMs);
  }

  /**
   * Start watching `pid`. `skipMs` leaves its first moments out of the peak:
   * a load process compiles and connects before it loads the broker.
   */
  watch(name: string, pid: number, skipMs = 0): void {
    const track: Track = { pid, peakFrom: performance.now() + skipMs, samples: [], peakRssKiB: 0 };
    this.#tracks.set(name, track);
    this.#sampleOne(track);
  }

  #sample(): void {
    for (const track of this.#tracks.values()) this.#sampleOne(track);
  }

  #sampleOne(track: Track): void {
    const cpu = readCpuSeconds(track.pid);
    if (cpu === null) return;
    track.samples.push([performance.now(), cpu]);
    const rss = readRssKiB(track.pid);
    if (rss !== null && rss > track.peakRssKiB) track.peakRssKiB = rss;
  }

  /** Stop sampling; per watched name, CPU use and peak RSS. */
  stop(): Record<string, CpuUse & { peakRssKiB: number }> {
    clearInterval(this.#timer);
    this.#sample();
    const out: Record<string, CpuUse & { peakRssKiB: number }> = {};
    for (const [name, { samples, peakRssKiB, peakFrom }] of this.#tracks) {
      // A watch too short to skip the start falls back to every window.
      const peak = peakUse(samples, peakFrom) ?? peakUse(samples, -Infinity) ?? 0;
      const first = samples[0];
      const last = samples[samples.length - 1];
      const mean = first && last && last[0] > first[0] ? ((last[1] - first[1]) * 1000) / (last[0] - first[0]) : 0;
      out[name] = { meanPct: Math.round(mean * 100), peakPct: Math.round(peak * 100), peakRssKiB };
    }
    return out;
  }
}

/** Highest CPU use (cores) over ~1 s windows starting at or after `from`; null without any. */
function peakUse(samples: ReadonlyArray<[number, number]>, from: number): number | null {
  let peak: number | null = null;
  let j = 0;
  for (let i = 0; i < samples.length; i++) {
    if (samples[i]![0] < from) continue;
    while (j < samples.length && samples[j]![0] - samples[i]![0] < 1000) j++;
    if (j >= samples.length) break;
    const [t0, c0] = samples[i]!;
    const [t1, c1] = samples[j]!;
    peak = Math.max(peak ?? 0, ((c1 - c0) * 1000) / (t1 - t0));
  }
  return peak;
}

/** Spawn with stdio captured; resolves with the exit code and output (or rejects on timeout, after a kill). */
export function runChild(
  command: string,
  args: readonly string[],
  opts: { timeoutMs: number; onSpawn?: (pid: number) => void; env?: NodeJS.ProcessEnv },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-20_000)));
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')}: no result within ${opts.timeoutMs} ms\n${stderr.slice(-2000)}`));
    }, opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last line of `text` that parses as a JSON object. */
export function lastJsonLine(text: string): Record<string, unknown> | null {
  const lines = text.trim().split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith('{')) continue;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      // not JSON; keep looking
    }
  }
  return null;
}
