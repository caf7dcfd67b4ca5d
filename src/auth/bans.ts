/**
 * Address bans: an address that fails authentication or sends malformed
 * packets `maxFailures` times within `windowMs` is refused for `durationMs`.
 * The broker asks `isBanned()` when a connection arrives (after a PROXY
 * header, so the real client is banned, not the proxy) and reports
 * `recordFailure()`. Operators (admin API) list, add and remove bans.
 *
 * Invariants:
 * - addresses are compared in canonical form (`::ffff:1.2.3.4` = `1.2.3.4`);
 * - exempt addresses (config `exempt`, loopback by default) are never
 *   counted or banned;
 * - memory is bounded: at most MAX_TRACKED failure counters and MAX_BANS
 *   bans; past that the oldest entries go first (an attacker spraying
 *   addresses can only evict its own older entries).
 */
import net from 'node:net';
import type { BansConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';

const MAX_TRACKED = 10_000;
const MAX_BANS = 100_000;

export type FailureKind = 'auth' | 'malformed';

export interface BanEntry {
  readonly address: string;
  /** When the ban ends, ms since the epoch. */
  readonly until: number;
  readonly reason: string;
}

interface Counter {
  count: number;
  windowStart: number;
}

/** `::ffff:1.2.3.4` -> `1.2.3.4`; other addresses unchanged. */
export function canonicalAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** Build a BlockList from addresses and CIDR ranges; throws on an invalid entry. */
export function addressList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries) {
    const slash = entry.indexOf('/');
    const address = slash < 0 ? entry : entry.slice(0, slash);
    const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : undefined;
    if (family === undefined) throw new TypeError(`not an IP address or CIDR range: ${entry}`);
    if (slash < 0) list.addAddress(address, family);
    else {
      const prefix = Number(entry.slice(slash + 1));
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv4' ? 32 : 128)) throw new TypeError(`bad prefix length: ${entry}`);
      list.addSubnet(address, prefix, family);
    }
  }
  return list;
}

export interface BanListOptions {
  log?: Logger | undefined;
  /** Clock, ms since the epoch (tests inject one). */
  now?: (() => number) | undefined;
}

export class BanList {
  readonly #config: BansConfig;
  readonly #exempt: net.BlockList;
  readonly #now: () => number;
  readonly #log: Logger | undefined;
  readonly #failures = new Map<string, Counter>();
  readonly #bans = new Map<string, BanEntry>();

  constructor(config: BansConfig, options: BanListOptions = {}) {
    this.#config = config;
    this.#exempt = addressList(config.exempt);
    this.#now = options.now ?? Date.now;
    this.#log = options.log;
  }

  /** Is this address exempt from bans? */
  isExempt(address: string): boolean {
    const a = canonicalAddress(address);
    const family = net.isIPv4(a) ? 'ipv4' : net.isIPv6(a) ? 'ipv6' : undefined;
    return family !== undefined && this.#exempt.check(a, family);
  }

  /** Called for every new connection: one Map lookup when nobody is banned. */
  isBanned(address: string): boolean {
    if (this.#bans.size === 0) return false;
    const a = canonicalAddress(address);
    const ban = this.#bans.get(a);
    if (ban === undefined) return false;
    if (ban.until > this.#now()) return true;
    this.#bans.delete(a);
    return false;
  }

  /**
   * Count a failed authentication or a malformed packet from `address`.
   * Returns true when this failure started a ban.
   */
  recordFailure(address: string, kind: FailureKind): boolean {
    const { maxFailures, windowMs, durationMs } = this.#config;
    if (maxFailures === 0) return false;
    const a = canonicalAddress(address);
    if (a === '' || this.isExempt(a)) return false;
    const now = this.#now();
    let counter = this.#failures.get(a);
    if (counter === undefined || now - counter.windowStart >= windowMs) {
      if (counter !== undefined) this.#failures.delete(a);
      counter = { count: 0, windowStart: now };
      this.#failures.set(a, counter);
      if (this.#failures.size > MAX_TRACKED) this.#evictOldest(this.#failures);
    }
    counter.count++;
    if (counter.count < maxFailures) return false;
    this.#failures.delete(a);
    const reason = `${counter.count} ${kind === 'auth' ? 'failed authentications' : 'malformed packets or failures'} within ${windowMs} ms`;
    this.#set({ address: a, until: now + durationMs, reason });
    this.#log?.warn({ address: a, reason, durationMs }, 'address banned');
    return true;
  }

  /** Ban an address by hand (admin API). */
  add(address: string, durationMs: number = this.#config.durationMs, reason = 'banned by an operator'): BanEntry {
    const entry: BanEntry = { address: canonicalAddress(address), until: this.#now() + durationMs, reason };
    this.#set(entry);
    this.#log?.warn({ address: entry.address, reason, durationMs }, 'address banned');
    return entry;
  }

  /** Lift a ban; false if the address was not banned. */
  remove(address: string): boolean {
    const a = canonicalAddress(address);
    this.#failures.delete(a);
    const removed = this.#bans.delete(a);
    if (removed) this.#log?.info({ address: a }, 'ban lifted');
    return removed;
  }

  /** Current bans (expired ones are pruned first). */
  list(): BanEntry[] {
    const now = this.#now();
    for (const [a, ban] of this.#bans) if (ban.until <= now) this.#bans.delete(a);
    return [...this.#bans.values()];
  }

  #set(entry: BanEntry): void {
    this.#bans.delete(entry.address);
    this.#bans.set(entry.address, entry);
    if (this.#bans.size > MAX_BANS) this.#evictOldest(this.#bans);
  }

  #evictOldest(map: Map<string, unknown>): void {
    const first = map.keys().next();
    if (first.done !== true) map.delete(first.value);
  }
}
