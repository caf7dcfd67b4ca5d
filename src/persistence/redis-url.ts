/** URL schemes `createRedis` (redis-connect.ts) accepts; kept apart so config validation does not load ioredis. */
export const REDIS_URL_PATTERN = /^(rediss?|rediss?\+sentinel|rediss?\+cluster):\/\//;

/** A Redis Cluster URL, whose key prefix must hold a hash tag (`{...}`) so every key lands in one slot. */
export function needsHashTag(url: string, prefix: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url) && !/\{[^}]+\}/.test(prefix);
}
