/**
 * Topic name and filter rules [MQTT-4.7]. Pure functions, no allocation on
 * the valid path beyond what the caller already has.
 */

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;

/**
 * A PUBLISH topic name: non-empty [MQTT-4.7.3-1], no wildcards [MQTT-3.3.2-2],
 * at most `maxLevels` levels (our own limit; guards deep recursion).
 * UTF-8 validity and U+0000 are checked by the codec.
 */
export function isValidTopicName(topic: string, maxLevels: number): boolean {
  const len = topic.length;
  if (len === 0) return false;
  let levels = 1;
  for (let i = 0; i < len; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return false;
    if (c === SLASH && ++levels > maxLevels) return false;
  }
  return true;
}

/**
 * A SUBSCRIBE/UNSUBSCRIBE filter: non-empty; `#` only as a whole last level
 * [MQTT-4.7.1-2]; `+` only as a whole level [MQTT-4.7.1-3].
 */
export function isValidTopicFilter(filter: string, maxLevels: number): boolean {
  const len = filter.length;
  if (len === 0) return false;
  let levels = 1;
  for (let i = 0; i < len; i++) {
    const c = filter.charCodeAt(i);
    if (c === SLASH) {
      if (++levels > maxLevels) return false;
    } else if (c === PLUS) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || (i + 1 < len && filter.charCodeAt(i + 1) !== SLASH)) {
        return false;
      }
    } else if (c === HASH) {
      if (i !== len - 1 || (i > 0 && filter.charCodeAt(i - 1) !== SLASH)) return false;
    }
  }
  return true;
}

export function hasWildcard(filter: string): boolean {
  return filter.includes('+') || filter.includes('#');
}

export interface SharedFilter {
  group: string;
  filter: string;
}

const SHARE_PREFIX = '$share/';

/**
 * Parse `$share/{ShareName}/{filter}` [MQTT-4.8.2]. Returns undefined for a
 * normal filter, null for a malformed shared one (empty or wildcard share
 * name [MQTT-4.8.2-1/2], missing filter).
 */
export function parseSharedFilter(filter: string): SharedFilter | null | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const slash = filter.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return null;
  const group = filter.slice(SHARE_PREFIX.length, slash);
  const rest = filter.slice(slash + 1);
  if (group.length === 0 || group.includes('+') || group.includes('#') || rest.length === 0) return null;
  return { group, filter: rest };
}

/** Does `filter` match `topic`? Used off the hot path (retained lookups, ACL tests). */
export function topicMatches(filter: string, topic: string): boolean {
  // [MQTT-4.7.2-1] a leading wildcard does not match a topic starting with `$`.
  if (topic.charCodeAt(0) === 0x24 && (filter.charCodeAt(0) === PLUS || filter.charCodeAt(0) === HASH)) return false;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
