/**
 * Picks the storage backend named by the configuration.
 */
import type { StorageConfig } from '../config/schema.js';
import { MemoryPersistence } from './memory.js';
import type { Persistence } from './persistence.js';
import { RedisPersistence } from './redis.js';
import { SqlitePersistence } from './sqlite.js';

export interface CreatePersistenceOptions extends StorageConfig {
  /** Move a corrupt sqlite database aside and start empty (`tern broker --repair-storage`). */
  repair?: boolean;
}

/** A new, not yet opened, Persistence for `cfg`. */
export function createPersistence(cfg: CreatePersistenceOptions): Persistence {
  const limits = { maxRetained: cfg.maxRetained, maxRetainedBytes: cfg.maxRetainedBytes };
  switch (cfg.backend) {
    case 'memory':
      return new MemoryPersistence(limits);
    case 'sqlite':
      return new SqlitePersistence({
        ...limits,
        path: cfg.path,
        durability: cfg.durability,
        repair: cfg.repair ?? false,
      });
    case 'redis':
      return new RedisPersistence({ ...limits, url: cfg.redisUrl, prefix: cfg.redisPrefix });
  }
}
