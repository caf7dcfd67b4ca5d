/**
 * Readings of another process from /proc (Linux): resident memory, open file
 * descriptors, and its resource limits changed in place with prlimit(1)
 * (util-linux), for the hardening tests that watch a broker child process.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Resident set size in bytes (VmRSS of /proc/<pid>/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Open file descriptors (entries of /proc/<pid>/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Open sockets among them (links to `socket:[inode]`). */
export function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // Closed meanwhile.
    }
  }
  return n;
}

/**
 * Set the soft limit of a running process's resource (`nofile`, `fsize`):
 * `prlimit --pid PID --RESOURCE=N:`. The hard limit stays, so the soft one
 * can be raised again later without privileges (a process of the same user).
 */
export function setLimit(pid: number, resource: 'nofile' | 'fsize', value: number): void {
  execFileSync('prlimit', ['--pid', String(pid), `--${resource}=${value}:`]);
}

/** The soft limit of a running process (`prlimit --pid PID --RESOURCE -o SOFT`). */
export function getLimit(pid: number, resource: 'nofile' | 'fsize'): string {
  return execFileSync('prlimit', ['--pid', String(pid), `--${resource}`, '--noheadings', '-o', 'SOFT'], { encoding: 'utf8' }).trim();
}

/** Samples RSS every `everyMs` until stopped; keeps every sample (ms since start, bytes). */
export class RssSampler {
  readonly samples: Array<[number, number]> = [];
  readonly #timer: NodeJS.Timeout;
  readonly #t0 = performance.now();

  constructor(pid: number, everyMs = 200) {
    const take = (): void => {
      try {
        this.samples.push([performance.now() - this.#t0, rssBytes(pid)]);
      } catch {
        // The process is gone: the test will say so.
      }
    };
    take();
    this.#timer = setInterval(take, everyMs);
  }

  get peak(): number {
    let max = 0;
    for (const [, v] of this.samples) if (v > max) max = v;
    return max;
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

export const MiB = 1024 * 1024;

/** `12.3 MiB`. */
export function mib(bytes: number): string {
  return `${(bytes / MiB).toFixed(1)} MiB`;
}
