/** URL schemes `createRedis` (redis-connect.ts) accepts; kept apart so config validation does not load ioredis. */
export const REDIS_URL_PATTERN = /^(rediss?|rediss?\+sentinel):\/\//;
