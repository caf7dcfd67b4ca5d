/**
 * Cluster-unique stored-message ids. Every node writes messages into the one
 * shared store, where an id names one message: two nodes counting on their
 * own would collide. Each node takes blocks of ids from one Redis counter
 * (one round trip per BLOCK ids) and asks for the next block when half of the
 * current one is used, so next() stays synchronous on the hot path.
 */
import type { Redis } from 'ioredis';
import { ternError } from '../errors.js';

const BLOCK = 1 << 20;

/** Reserve a block: the counter never falls below the store's own last id (a store used before clustering). */
const RESERVE = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local m = tonumber(redis.call('HGET', KEYS[2], 'last-message-id') or '0')
if m > c then c = m end
c = c + tonumber(ARGV[1])
redis.call('SET', KEYS[1], c)
return c`;

export class IdBlocks {
  readonly #redis: Redis;
  readonly #counterKey: string;
  readonly #metaKey: string;
  #next = 0;
  #end = 0;
  #spare: [number, number] | null = null;
  #fetching: Promise<void> | null = null;
  onError: (err: unknown) => void = () => {};

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#counterKey = `${prefix}cluster:message-ids`;
    this.#metaKey = `${prefix}meta`;
  }

  async start(): Promise<void> {
    const [from, to] = await this.#reserve();
    this.#next = from;
    this.#end = to;
  }

  next(): number {
    if (this.#next > this.#end) {
      if (this.#spare === null) throw ternError('ERR_CLUSTER_IDS_EXHAUSTED');
      [this.#next, this.#end] = this.#spare;
      this.#spare = null;
    }
    const id = this.#next++;
    if (this.#spare === null && this.#fetching === null && this.#end - this.#next < BLOCK / 2) {
      this.#fetching = this.#reserve().then(
        (block) => {
          this.#spare = block;
          this.#fetching = null;
        },
        (err: unknown) => {
          this.#fetching = null;
          this.onError(err);
        },
      );
    }
    return id;
  }

  async #reserve(): Promise<[number, number]> {
    const end = Number(await this.#redis.eval(RESERVE, 2, this.#counterKey, this.#metaKey, BLOCK));
    return [end - BLOCK + 1, end];
  }
}
