/**
 * Assembles the broker's security from the config: a HookRegistry with the
 * plugins' hooks first and the built-in providers (password file, ACL,
 * anonymous policy) after them, plus the ban list. The broker creates one
 * per instance and calls its runners (see docs/hooks.md, "Broker wiring").
 */
import { BanList } from '../auth/bans.js';
import { BuiltinAuth } from '../auth/providers.js';
import type { TernConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { loadPlugins } from './plugin.js';
import { HookRegistry } from './registry.js';

export interface Security {
  readonly hooks: HookRegistry;
  readonly bans: BanList;
  /** Re-read auth files and run plugin reload tasks; resolves with the failures (already logged). */
  reload(): Promise<Error[]>;
  close(): Promise<void>;
}

export interface SecurityOptions {
  log?: Logger | undefined;
  /** Directory relative plugin paths are resolved against; default the working directory. */
  baseDir?: string | undefined;
  /** Clock for bans, ms since the epoch. */
  now?: (() => number) | undefined;
}

export async function createSecurity(
  config: Pick<TernConfig, 'auth' | 'bans' | 'plugins'>,
  options: SecurityOptions = {},
): Promise<Security> {
  const hooks = new HookRegistry(options.log);
  try {
    await loadPlugins(hooks, config.plugins, { log: options.log, baseDir: options.baseDir });
    (await BuiltinAuth.create(config.auth, options.log)).register(hooks);
  } catch (err) {
    await hooks.close();
    throw err;
  }
  const bans = new BanList(config.bans, { log: options.log, now: options.now });
  return {
    hooks,
    bans,
    reload: () => hooks.reload(),
    close: () => hooks.close(),
  };
}
