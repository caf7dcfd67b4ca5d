/**
 * Topic mapping for the bridge: which local messages a forward rule takes and
 * what remote topic they get, what local topic a remote message gets, and the
 * loop check done at config load.
 *
 * A forward rule `{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }`
 * maps `sensors/temp` to `devices/edge1/sensors/temp`. A subscribe rule
 * `{ remote: 'devices/edge1/cmd/#', strip: 'devices/edge1/', localPrefix: '' }`
 * maps `devices/edge1/cmd/reboot` to `cmd/reboot`.
 */
import { isValidTopicFilter, topicMatches } from '../broker/topic.js';

export { topicMatches };

/** Remote topic for a local one under a forward rule's prefix. */
export function forwardTopic(prefix: string, topic: string): string {
  return prefix.length === 0 ? topic : prefix + topic;
}

/** Local topic for a remote one under a subscribe rule (strip, then add the local prefix). */
export function subscribeTopic(strip: string, localPrefix: string, topic: string): string {
  const rest = strip.length > 0 && topic.startsWith(strip) ? topic.slice(strip.length) : topic;
  return localPrefix.length === 0 ? rest : localPrefix + rest;
}

/**
 * The filter that covers every local topic a subscribe rule can produce, or
 * undefined when the strip prefix is not a literal prefix of the remote
 * filter (then the rule is refused at load: its output cannot be reasoned about).
 */
export function subscribeOutputFilter(remoteFilter: string, strip: string, localPrefix: string): string | undefined {
  if (strip.length > 0) {
    if (!remoteFilter.startsWith(strip)) return undefined;
    const literal = strip.replace(/\/$/, '');
    if (literal.includes('+') || literal.includes('#')) return undefined;
  }
  const rest = remoteFilter.slice(strip.length);
  if (rest.length === 0) return undefined;
  return localPrefix + rest;
}

/**
 * Whether some topic name matches both filters [MQTT-4.7.1]: level by level,
 * `#` matches the rest, `+` any one level, literals must be equal. Topics
 * starting with `$` are not matched by a leading wildcard [MQTT-4.7.2-1].
 */
export function filtersOverlap(a: string, b: string): boolean {
  const la = a.split('/');
  const lb = b.split('/');
  const n = Math.max(la.length, lb.length);
  for (let i = 0; i < n; i++) {
    const x = la[i];
    const y = lb[i];
    if (x === '#' || y === '#') {
      if (i === 0) {
        // A leading wildcard never matches a $-topic.
        const other = x === '#' ? y : x;
        if (other !== undefined && other.startsWith('$')) return false;
      }
      return true;
    }
    if (x === undefined || y === undefined) return false;
    if (x === '+' || y === '+') {
      if (i === 0) {
        const other = x === '+' ? y : x;
        if (other.startsWith('$')) return false;
      }
      continue;
    }
    if (x !== y) return false;
  }
  return true;
}

export function isValidFilter(filter: string): boolean {
  return isValidTopicFilter(filter, 128) && !filter.startsWith('$share/');
}

/** A prefix must be a valid topic start: no wildcards, no NUL. */
export function isValidPrefix(prefix: string): boolean {
  return !prefix.includes('+') && !prefix.includes('#') && !prefix.includes('\u0000');
}
