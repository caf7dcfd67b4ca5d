/**
 * Configuration reload: which keys of a new configuration differ from the
 * running one, which of them can take effect live, and the running
 * configuration with only those applied. The broker does the applying
 * (broker.ts reload()); this module only compares.
 *
 * Live: `limits.*` (the broker reads them at use time), `log.level`,
 * `sys.interval` and `message_log.*` (the sinks are restarted or
 * re-filtered). Everything else takes a restart; a section this module does
 * not know is treated the same way, so a new section is never applied by
 * accident. Files named by the configuration (password file, ACL file,
 * listener certificates) are re-read on every reload whatever changed.
 */
import { isDeepStrictEqual } from 'node:util';
import type { TernConfig } from '../config/schema.js';
import { camelToSnake, formatPath, type PathSegment } from '../config/keys.js';

/** One thing a reload could not do; `key` names the config key or section, as a TOML file spells it. */
export interface ReloadFailure {
  key: string;
  /** The error's code (ERR_CONFIG_INVALID, ENOENT, ...), when it has one. */
  code?: string;
  message: string;
}

/** What broker.reload() did: also the body of POST /api/v1/reload and the SIGHUP log line. */
export interface ReloadResult {
  /** False when the new configuration was refused as a whole (it did not load or validate): nothing changed. */
  reloaded: boolean;
  /** Changed keys now in effect (TOML spelling: `limits.max_inflight`, `log.level`). */
  applied: string[];
  /** Changed keys that take effect only after a restart (`listeners[0].port`, `storage.path`). */
  restartRequired: string[];
  failures: ReloadFailure[];
}

/** The sections (or keys of a section) that reload applies live. */
const LIVE: ReadonlySet<string> = new Set(['limits', 'log.level', 'sys', 'messageLog.file', 'messageLog.bigquery']);

export interface ConfigChanges {
  /** Changed key paths (code spelling) that reload applies live, grouped by their live section. */
  readonly live: ReadonlyMap<string, PathSegment[][]>;
  /** Changed key paths (code spelling) that need a restart. */
  readonly restart: readonly PathSegment[][];
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Paths where `a` and `b` differ: leaf keys, except that a value array, a resized array of tables or a plugin instance counts as one. */
function collect(a: unknown, b: unknown, path: PathSegment[], out: PathSegment[][]): void {
  if (isDeepStrictEqual(a, b)) return;
  const atPlugin = path.length === 2 && path[0] === 'plugins';
  // Arrays of tables ([[listeners]], [[bridges]]) are compared entry by entry; other arrays as one value.
  if (!atPlugin && Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every(isTable) && b.every(isTable)) {
    for (let i = 0; i < a.length; i++) collect(a[i], b[i], [...path, i], out);
    return;
  }
  if (!atPlugin && isTable(a) && isTable(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) collect(a[key], b[key], [...path, key], out);
    return;
  }
  out.push(path);
}

/** The live section a changed path belongs to, or undefined when it needs a restart. */
function liveSection(path: readonly PathSegment[]): string | undefined {
  const section = String(path[0]);
  if (LIVE.has(section)) return section;
  const key = `${section}.${String(path[1])}`;
  return path.length >= 2 && LIVE.has(key) ? key : undefined;
}

/** Compare two validated configurations section by section. */
export function diffConfig(running: TernConfig, next: TernConfig): ConfigChanges {
  const changed: PathSegment[][] = [];
  collect(running, next, [], changed);
  const live = new Map<string, PathSegment[][]>();
  const restart: PathSegment[][] = [];
  for (const path of changed) {
    const section = liveSection(path);
    if (section === undefined) restart.push(path);
    else live.set(section, [...(live.get(section) ?? []), path]);
  }
  return { live, restart };
}

/**
 * `['limits', 'maxInflight']` -> `limits.max_inflight`, as a TOML file
 * spells it; plugin instance names and their options stay as written.
 */
export function tomlKey(path: readonly PathSegment[]): string {
  const plugin = path[0] === 'plugins';
  return formatPath(path.map((s, i) => (typeof s === 'string' && !(plugin && i >= 1) ? camelToSnake(s) : s)));
}

/**
 * The running configuration with the given live sections taken from `next`
 * (`log.level` alone from the log section); every other key keeps its
 * running value, so `config` always tells what is in effect.
 */
export function withLive(running: TernConfig, next: TernConfig, sections: Iterable<string>): TernConfig {
  const out: TernConfig = { ...running };
  for (const section of sections) {
    switch (section) {
      case 'limits':
        out.limits = next.limits; // the whole object: readers see old or new limits, never a mix
        break;
      case 'log.level':
        out.log = Object.freeze({ ...out.log, level: next.log.level });
        break;
      case 'sys':
        out.sys = next.sys;
        break;
      case 'messageLog.file':
        out.messageLog = Object.freeze({ ...out.messageLog, file: next.messageLog.file });
        break;
      case 'messageLog.bigquery':
        out.messageLog = Object.freeze({ ...out.messageLog, bigquery: next.messageLog.bigquery });
        break;
      default:
        throw new TypeError(`not a live configuration section: ${section}`);
    }
  }
  return Object.freeze(out);
}

/** An error as a reload failure under `key`. */
export function reloadFailure(key: string, err: unknown): ReloadFailure {
  const e = err as { code?: unknown; message?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return typeof e?.code === 'string' ? { key, code: e.code, message } : { key, message };
}
