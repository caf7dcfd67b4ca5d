/**
 * Reconnect delays: exponential growth from `minDelayMs`, capped at
 * `maxDelayMs`, with part of each delay randomised away so a fleet of
 * clients cut off together does not reconnect in lock step.
 */
import type { ResolvedReconnect } from './options.js';

/** Delay before reconnect attempt `attempt` (0 = first retry). `random` is injectable for tests. */
export function reconnectDelay(attempt: number, r: ResolvedReconnect, random: () => number = Math.random): number {
  const grown = r.minDelayMs * r.factor ** Math.min(attempt, 64);
  const capped = grown < r.maxDelayMs ? grown : r.maxDelayMs;
  return Math.round(capped * (1 - r.jitter * random()));
}
