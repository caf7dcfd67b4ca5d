/**
 * File descriptors left for new connections (Linux; elsewhere it admits
 * everything). Out of descriptors, libuv closes each new connection itself
 * (it accepts it on a descriptor kept in reserve and closes it) and never
 * tells Node: clients would be turned away without a word, and the broker
 * could not open a file it needs (a log, the store's journal). So the broker
 * refuses connections itself while fewer than `reserve` descriptors would be
 * left, and logs that it does.
 *
 * Cheap on the hot path: the open descriptors are counted (/proc/self/fd)
 * and the soft RLIMIT_NOFILE read (/proc/self/limits) at most once a
 * second, or when the estimate (last count plus connections opened since)
 * reaches the limit; a limit changed at run time (prlimit) is seen within a
 * second.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Descriptors kept free for the broker's own files, the HTTP API and connections being set up. */
export const FD_RESERVE = 32;
const RECOUNT_MS = 1000;
/** While refusing, the count is redone at most this often (connections that close free descriptors). */
const RECOUNT_WHEN_FULL_MS = 100;
/** While refusals go on, at most one log line per this many milliseconds. */
export const FD_LOG_INTERVAL_MS = 10_000;

export class FdBudget {
  readonly #reserve: number;
  #limit = Infinity;
  #open = 0;
  #connectionsAtCount = 0;
  #countedAt = -Infinity;
  #available: boolean;
  /** Refusals in the current run (0: admitting), and those not logged yet. */
  #refused = 0;
  #unlogged = 0;
  #loggedAt = -Infinity;

  constructor(reserve = FD_RESERVE) {
    this.#reserve = reserve;
    this.#available = process.platform === 'linux';
  }

  /** The soft limit and the descriptors open at the last count (for log lines). */
  get limit(): number {
    return this.#limit;
  }

  get open(): number {
    return this.#open;
  }

  /** May one more connection be taken, with `connections` open now? */
  admit(connections: number, now: number): boolean {
    if (!this.#available) return true;
    const since = now - this.#countedAt;
    if (since >= RECOUNT_MS || (since >= RECOUNT_WHEN_FULL_MS && this.#estimate(connections) + this.#reserve >= this.#limit)) {
      this.#count(connections, now);
    }
    return this.#estimate(connections) + this.#reserve < this.#limit;
  }

  /**
   * A connection was refused: returns how many refusals to report in a log
   * line now (the first of a run, then at most one line per
   * FD_LOG_INTERVAL_MS), or 0 for none.
   */
  refused(now: number): number {
    this.#refused++;
    this.#unlogged++;
    if (this.#refused > 1 && now - this.#loggedAt < FD_LOG_INTERVAL_MS) return 0;
    this.#loggedAt = now;
    const n = this.#unlogged;
    this.#unlogged = 0;
    return n;
  }

  /** A connection was admitted: returns the refusals of the run it ends (0 if none). */
  admitted(): number {
    const n = this.#refused;
    this.#refused = 0;
    this.#unlogged = 0;
    return n;
  }

  #estimate(connections: number): number {
    return this.#open + connections - this.#connectionsAtCount;
  }

  #count(connections: number, now: number): void {
    try {
      this.#limit = softFdLimit(readFileSync('/proc/self/limits', 'utf8'));
      this.#open = readdirSync('/proc/self/fd').length;
    } catch {
      // No /proc after all: admit everything from now on.
      this.#available = false;
      this.#limit = Infinity;
    }
    this.#connectionsAtCount = connections;
    this.#countedAt = now;
  }
}

/** The soft "Max open files" of a /proc/<pid>/limits text; Infinity when unlimited or absent. */
export function softFdLimit(limits: string): number {
  const m = /^Max open files\s+(\S+)/m.exec(limits);
  if (m === null || m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isFinite(n) ? n : Infinity;
}
