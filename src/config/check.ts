/**
 * Cross-field checks that run after the schema accepted every single value
 * (mosquitto src/conf.c::config__check does the same pass). Each check
 * returns issues with code (camelCase) paths; the loader turns them into the
 * same file:line messages as schema errors.
 */
import type { PathSegment } from './keys.js';
import type { TernConfig } from './schema.js';

export interface ConfigIssue {
  /** Key path in code spelling, e.g. ['listeners', 1, 'port']. */
  readonly path: readonly PathSegment[];
  readonly message: string;
}

/** Addresses that bind every interface, so they clash with any host on the same port. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '*']);

function hostsOverlap(a: string, b: string): boolean {
  return a === b || WILDCARD_HOSTS.has(a) || WILDCARD_HOSTS.has(b);
}

/** Two listeners cannot bind the same port on overlapping addresses (port 0 picks a free port each time). */
function checkListenerAddresses(config: TernConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const { listeners } = config;
  for (let i = 1; i < listeners.length; i++) {
    const l = listeners[i]!;
    if (l.port === 0) continue;
    for (let j = 0; j < i; j++) {
      const other = listeners[j]!;
      if (other.port === l.port && hostsOverlap(other.host, l.host)) {
        issues.push({
          path: ['listeners', i, 'port'],
          message: `${l.host}:${l.port} is already used by listener ${j} (${other.host}:${other.port})`,
        });
        break;
      }
    }
  }
  return issues;
}

const CHECKS: ReadonlyArray<(config: TernConfig) => ConfigIssue[]> = [checkListenerAddresses];

/** Run every cross-field check; an empty result means the config is consistent. */
export function checkConfig(config: TernConfig): ConfigIssue[] {
  return CHECKS.flatMap((check) => check(config));
}
