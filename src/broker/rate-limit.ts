/**
 * Rate limits against abusive clients: a publish rate per connection
 * (PUBLISH packets and bytes per second) and a new-connection rate per
 * remote address.
 *
 * Both read their limits at use time, from the `limits` object passed in,
 * so a reload that swaps `config.limits` applies to open connections at once.
 * Neither keeps a timer: the connection owns the one timer that runs while
 * its reading is paused.
 */

/** The limits a PublishRate reads (a slice of `config.limits`). */
export interface PublishRateLimits {
  /** PUBLISH packets per second; 0 = off. */
  readonly maxPublishRate: number;
  /** PUBLISH bytes per second, whole packets (fixed header included); 0 = off. */
  readonly maxPublishBytesRate: number;
  /** Over the limit this long (ms) and the client is disconnected; 0 = only slow it down. */
  readonly rateLimitDisconnectAfterMs: number;
}

/** Bytes a packet with this remaining length takes on the wire: type byte, length varint, body. */
export function wireBytes(remainingLength: number): number {
  return remainingLength + (remainingLength < 0x80 ? 2 : remainingLength < 0x4000 ? 3 : remainingLength < 0x200000 ? 4 : 5);
}

/** What PublishRate.take and wait answer: go on reading, pause for N ms, or disconnect. */
export const RATE_OK = 0;
export const RATE_DISCONNECT = -1;

/**
 * Two token buckets for one connection: packets and bytes, each holding one
 * second of its rate (the burst a client may send at once). The publishes of
 * a whole read are taken together, after the read: a bucket may go into
 * debt, and reading then stops until the debt is paid off, so the client's
 * achieved rate is the limit, and no work is done per packet beyond a count.
 *
 * "Over the limit" starts when a read leaves a debt and ends when a read
 * leaves none, or when a bucket refills completely (the client sent less
 * than its rate for a second). A client over it for longer than
 * `rateLimitDisconnectAfterMs` is to be disconnected.
 */
export class PublishRate {
  /** Tokens left; negative is debt. Infinity while a limit is off (a full bucket once it is on). */
  #packets = Infinity;
  #bytes = Infinity;
  /** When the buckets were last refilled (ms epoch). */
  #at: number;
  /** When the client went over its limit (ms epoch), or -1. */
  #overSince = -1;

  constructor(now: number) {
    this.#at = now;
  }

  /** Whether the client is over its limit right now (its reading is being slowed). */
  get over(): boolean {
    return this.#overSince >= 0;
  }

  /**
   * After a read: take its `packets` PUBLISH packets of `bytes` wire bytes.
   * Returns RATE_OK, the milliseconds to stop reading for, or RATE_DISCONNECT.
   */
  take(packets: number, bytes: number, limits: PublishRateLimits, now: number): number {
    const debt = this.#refill(limits, now, packets, bytes);
    if (debt <= 0) {
      this.#overSince = -1;
      return RATE_OK;
    }
    if (this.#overSince < 0) this.#overSince = now;
    return this.#pause(debt, limits, now);
  }

  /** At the end of a pause: RATE_OK once the debt is paid, else more ms to wait, or RATE_DISCONNECT. */
  wait(limits: PublishRateLimits, now: number): number {
    const debt = this.#refill(limits, now, 0, 0);
    if (debt <= 0) return RATE_OK; // still "over" until a read shows otherwise
    if (this.#overSince < 0) this.#overSince = now;
    return this.#pause(debt, limits, now);
  }

  /** Refill both buckets, take from them, and return the debt in milliseconds (<= 0: none). */
  #refill(limits: PublishRateLimits, now: number, packets: number, bytes: number): number {
    const seconds = now > this.#at ? (now - this.#at) / 1000 : 0;
    this.#at = now;
    let full = true;
    let debt = 0;
    const pr = limits.maxPublishRate;
    if (pr > 0) {
      let t = this.#packets + seconds * pr;
      if (t >= pr) t = pr;
      else full = false;
      t -= packets;
      this.#packets = t;
      if (t < 0) debt = (-t * 1000) / pr;
    } else {
      this.#packets = Infinity;
    }
    const br = limits.maxPublishBytesRate;
    if (br > 0) {
      let t = this.#bytes + seconds * br;
      if (t >= br) t = br;
      else full = false;
      t -= bytes;
      this.#bytes = t;
      if (t < 0 && (-t * 1000) / br > debt) debt = (-t * 1000) / br;
    } else {
      this.#bytes = Infinity;
    }
    // Refilled to the brim: the client was under its limit for a while; a new debt starts a new episode.
    if (full) this.#overSince = -1;
    return debt;
  }

  #pause(debt: number, limits: PublishRateLimits, now: number): number {
    let ms = Math.ceil(debt);
    const after = limits.rateLimitDisconnectAfterMs;
    if (after > 0) {
      const left = this.#overSince + after - now;
      if (left <= 0) return RATE_DISCONNECT;
      // Wake at the deadline at the latest, to disconnect a client still in debt then.
      if (left < ms) ms = left;
    }
    return ms < 1 ? 1 : ms;
  }
}

/** Addresses tracked in one window at most: past this, new addresses pass unchecked (memory stays bounded). */
const MAX_TRACKED_ADDRESSES = 65_536;

/**
 * New connections per second from each remote address, counted in
 * one-second windows. The per-address counts are dropped when a window
 * ends, so a spray of addresses costs at most one window's worth of entries
 * (and never more than MAX_TRACKED_ADDRESSES).
 */
export class ConnectionRate {
  #windowStart = 0;
  #counts = new Map<string, number>();
  #refused = 0;

  /** Connections refused in the current window (1 right after the first: log that one only). */
  get refused(): number {
    return this.#refused;
  }

  /** Count a new connection from `address`; false when it is past `maxPerSecond` in this window. */
  admit(address: string, maxPerSecond: number, now: number): boolean {
    if (now - this.#windowStart >= 1000 || now < this.#windowStart) {
      this.#windowStart = now;
      this.#counts.clear();
      this.#refused = 0;
    }
    const counts = this.#counts;
    const n = (counts.get(address) ?? 0) + 1;
    if (n === 1 && counts.size >= MAX_TRACKED_ADDRESSES) return true;
    counts.set(address, n);
    if (n <= maxPerSecond) return true;
    this.#refused++;
    return false;
  }
}
