/**
 * Topic-filter matching for the auth layer (ACL rules and their tests).
 * The broker's subscription trie (src/broker/topic-trie.ts) is separate: it
 * indexes many filters for one topic, these compare one rule at a time.
 *
 * Both functions walk the strings by index and allocate nothing. They assume
 * well-formed input (a valid filter, a valid topic name); on malformed input
 * they return false rather than throw.
 */

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/** End index (exclusive) of the level that starts at `start`. */
function levelEnd(s: string, start: number): number {
  const i = s.indexOf('/', start);
  return i < 0 ? s.length : i;
}

function levelEquals(a: string, aStart: number, aEnd: number, b: string, bStart: number, bEnd: number): boolean {
  const len = aEnd - aStart;
  if (len !== bEnd - bStart) return false;
  for (let i = 0; i < len; i++) {
    if (a.charCodeAt(aStart + i) !== b.charCodeAt(bStart + i)) return false;
  }
  return true;
}

/**
 * Does topic-filter `filter` match topic name `topic`? MQTT 3.1.1/5.0 rules:
 * `+` matches exactly one level, `#` (last level only) matches the parent
 * level and any number of levels below it [MQTT-4.7.1-2], and a wildcard in
 * the first level does not match a topic that starts with `$` [MQTT-4.7.2-1].
 */
export function matchTopic(filter: string, topic: string): boolean {
  const fLen = filter.length;
  const tLen = topic.length;
  if (fLen === 0 || tLen === 0) return false;
  const f0 = filter.charCodeAt(0);
  if (topic.charCodeAt(0) === DOLLAR && (f0 === PLUS || f0 === HASH)) return false;

  let f = 0; // start of the current filter level
  let t = 0; // start of the current topic level
  for (;;) {
    const fc = filter.charCodeAt(f);
    const fEnd = levelEnd(filter, f);
    if (fc === HASH && fEnd === f + 1) return true; // `#` also matches the parent level
    if (t > tLen) {
      // Topic exhausted, filter is not: only a trailing `/#` could still match, handled above.
      return false;
    }
    const tEnd = levelEnd(topic, t);
    if (!(fc === PLUS && fEnd === f + 1)) {
      if (!levelEquals(filter, f, fEnd, topic, t, tEnd)) return false;
    }
    const fDone = fEnd === fLen;
    const tDone = tEnd === tLen;
    if (fDone && tDone) return true;
    if (fDone) return false;
    f = fEnd + 1;
    t = tDone ? tLen + 1 : tEnd + 1; // tLen + 1 marks "topic exhausted"
  }
}

/**
 * Does `ruleFilter` cover `subFilter`, i.e. is every topic matched by
 * `subFilter` also matched by `ruleFilter`? This is the subscribe-time ACL
 * question ("may this client hold this subscription?"), the same relation as
 * mosquitto's `mosquitto_sub_matches_acl()`:
 *
 *   covers('a/#', 'a/+/c') → true      covers('a/+', 'a/#') → false
 *   covers('+/b', 'x/b')   → true      covers('a/b', 'a/+') → false
 *   covers('#', '$SYS/#')  → false (a leading wildcard never matches `$` topics)
 */
export function filterCovers(ruleFilter: string, subFilter: string): boolean {
  const rLen = ruleFilter.length;
  const sLen = subFilter.length;
  if (rLen === 0 || sLen === 0) return false;
  const subIsDollar = subFilter.charCodeAt(0) === DOLLAR;

  let r = 0;
  let s = 0;
  for (;;) {
    const rc = ruleFilter.charCodeAt(r);
    const rEnd = levelEnd(ruleFilter, r);
    const rWild = rEnd === r + 1 && (rc === PLUS || rc === HASH);
    if (rWild && r === 0 && subIsDollar) return false; // [MQTT-4.7.2-1]
    if (rc === HASH && rWild) return true; // covers the rest, whatever it is (including a parent level)
    if (s > sLen) return false; // sub exhausted, rule needs more levels
    const sc = subFilter.charCodeAt(s);
    const sEnd = levelEnd(subFilter, s);
    const sSingle = sEnd === s + 1;
    if (sc === HASH && sSingle) return false; // only a rule `#` covers a sub `#`
    if (sc === PLUS && sSingle) {
      if (!(rc === PLUS && rWild)) return false; // only `+` (or `#`, above) covers `+`
    } else if (!(rc === PLUS && rWild)) {
      if (!levelEquals(ruleFilter, r, rEnd, subFilter, s, sEnd)) return false;
    }
    const rDone = rEnd === rLen;
    const sDone = sEnd === sLen;
    if (rDone && sDone) return true;
    if (rDone) return false;
    r = rEnd + 1;
    s = sDone ? sLen + 1 : sEnd + 1;
  }
}

/**
 * Is `filter` a well-formed topic filter? Non-empty; `+` only as a whole
 * level; `#` only as the whole last level [MQTT-4.7.1-2] [MQTT-4.7.1-3].
 */
export function isValidFilter(filter: string): boolean {
  const len = filter.length;
  if (len === 0) return false;
  for (let i = 0; i < len; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS) {
      if ((i > 0 && filter.charCodeAt(i - 1) !== SLASH) || (i + 1 < len && filter.charCodeAt(i + 1) !== SLASH)) {
        return false;
      }
    } else if (c === HASH) {
      if (i !== len - 1 || (i > 0 && filter.charCodeAt(i - 1) !== SLASH)) return false;
    }
  }
  return true;
}

/** Is `topic` a well-formed topic name (non-empty, no wildcard characters)? [MQTT-4.7.3-1] [MQTT-3.3.2-2] */
export function isValidTopic(topic: string): boolean {
  if (topic.length === 0) return false;
  for (let i = 0; i < topic.length; i++) {
    const c = topic.charCodeAt(i);
    if (c === PLUS || c === HASH) return false;
  }
  return true;
}
