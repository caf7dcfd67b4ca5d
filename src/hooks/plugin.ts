/**
 * Plugins: a module exporting `plugin` (or a default export) shaped as
 * `{ name, apiVersion: 1, register(api, options) }`, loaded from the
 * `[plugins.NAME]` config tables in file order. The API version lets a
 * future Tern refuse plugins written for another contract instead of
 * calling them wrongly (mosquitto's `mosquitto_plugin_version()`).
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PluginConfig } from '../config/schema.js';
import { isTernError, ternError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { HookRegistry, PluginLogger } from './registry.js';
import type { HookEventName, HookEvents, HookFunctions, HookName, MaybePromise } from './types.js';

export const PLUGIN_API_VERSION = 1;

/** What `register` gets: everything a plugin may do. */
export interface PluginApi {
  readonly apiVersion: typeof PLUGIN_API_VERSION;
  /** The instance name from the config (`[plugins.NAME]`). */
  readonly instance: string;
  readonly log: PluginLogger;
  /** Add a hook (docs/hooks.md); unknown names throw ERR_HOOK_UNKNOWN. */
  addHook<K extends HookName>(name: K, fn: HookFunctions[K]): void;
  /** Listen to a notification event; unknown names throw ERR_HOOK_UNKNOWN. */
  on<E extends HookEventName>(event: E, listener: (...args: HookEvents[E]) => void): void;
  /** Run on reload (SIGHUP); a rejection is logged and keeps the plugin's old state. */
  onReload(fn: () => MaybePromise<void>): void;
  /** Run when the broker closes. */
  onClose(fn: () => MaybePromise<void>): void;
}

export interface TernPlugin<Options = Record<string, unknown>> {
  readonly name: string;
  readonly apiVersion: number;
  register(api: PluginApi, options: Options): MaybePromise<void>;
}

function isPlugin(value: unknown): value is TernPlugin {
  const p = value as Partial<TernPlugin> | null;
  return typeof p === 'object' && p !== null && typeof p.name === 'string' && p.name !== '' && typeof p.register === 'function';
}

/** Register an already imported plugin object. Throws ERR_PLUGIN_INVALID / ERR_PLUGIN_API_VERSION / ERR_PLUGIN_LOAD. */
export async function registerPlugin(
  registry: HookRegistry,
  plugin: unknown,
  instance: string,
  options: Record<string, unknown>,
  log?: Logger,
): Promise<void> {
  if (!isPlugin(plugin)) throw ternError('ERR_PLUGIN_INVALID', `${instance}: expected { name, apiVersion, register }`);
  if (plugin.apiVersion !== PLUGIN_API_VERSION) {
    throw ternError('ERR_PLUGIN_API_VERSION', `${instance} (${plugin.name}) wants API version ${String(plugin.apiVersion)}; this Tern has ${PLUGIN_API_VERSION}`);
  }
  const owner = `plugin ${instance} (${plugin.name})`;
  const pluginLog: PluginLogger = log?.child({ plugin: instance }) ?? { debug() {}, info() {}, warn() {}, error() {} };
  const api: PluginApi = {
    apiVersion: PLUGIN_API_VERSION,
    instance,
    log: pluginLog,
    addHook: (name, fn) => registry.addHook(name, fn, owner),
    on: (event, listener) => registry.on(event, listener, owner),
    onReload: (fn) => registry.onReload(fn, owner),
    onClose: (fn) => registry.onClose(fn, owner),
  };
  try {
    await plugin.register(api, options);
  } catch (err) {
    // A bad hook name stays a hook error; anything else is a failed load.
    if (isTernError(err, 'ERR_HOOK_UNKNOWN') || isTernError(err, 'ERR_HOOK_INVALID')) throw err;
    throw ternError('ERR_PLUGIN_LOAD', `${owner}: register() failed: ${(err as Error).message}`, { cause: err });
  }
  log?.info({ plugin: instance, name: plugin.name }, 'plugin loaded');
}

/** `./x.js` and `/abs/x.js` are files (relative to `baseDir`); anything else is a package name. */
function specifierOf(module: string, baseDir: string): string {
  if (module.startsWith('.') || isAbsolute(module)) return pathToFileURL(resolve(baseDir, module)).href;
  return module;
}

/** Import and register every configured plugin, in order. */
export async function loadPlugins(
  registry: HookRegistry,
  plugins: Readonly<Record<string, PluginConfig>>,
  options: { log?: Logger | undefined; baseDir?: string | undefined } = {},
): Promise<void> {
  const baseDir = options.baseDir ?? process.cwd();
  for (const [instance, config] of Object.entries(plugins)) {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(specifierOf(config.module, baseDir))) as Record<string, unknown>;
    } catch (err) {
      throw ternError('ERR_PLUGIN_LOAD', `${instance}: cannot import ${config.module}: ${(err as Error).message}`, { cause: err });
    }
    await registerPlugin(registry, mod['plugin'] ?? mod['default'], instance, config.options, options.log);
  }
}
