/**
 * Subscription trie: topic filter levels -> entries, with `+`, `#` and
 * shared-subscription groups [MQTT-4.7, MQTT-4.8.2].
 *
 * Invariants:
 * - A node exists only while it, or a descendant, holds an entry (empty
 *   branches are pruned on removal), so memory follows live subscriptions.
 * - Each node keeps entries in a Map keyed by owner (client id): one entry per
 *   owner per filter, so re-subscribing replaces [MQTT-3.8.4-3].
 * - Shared entries live in `groups` on the node of their inner filter, keyed by
 *   share name; the router picks one member per group per message.
 * - match() is iterative over levels with recursion only on wildcard branches,
 *   and its depth is bounded by the configured max topic levels. A cache miss
 *   cuts the topic into levels by `indexOf('/')` into a reused array.
 * - Route cache: match() remembers, per topic string, the entries and groups
 *   it found (at most `routeCacheSize` topics, in two generations, see
 *   #rotate). Every add() and remove() empties it, so a cached route is never
 *   stale; entries are cached by reference, so their fields are read live.
 *   Publishers that reuse their topics pay one Map lookup per message instead
 *   of a walk.
 *
 * Generic over the entry type so the cluster route table can reuse it.
 */
import { parseSharedFilter } from './topic.js';

export interface SharedGroup<E> {
  readonly name: string;
  /** The inner filter (without `$share/name/`). */
  readonly filter: string;
  /** The filter as subscribed: `$share/name/filter`. */
  readonly key: string;
  readonly members: Map<string, E>;
  /** Round-robin cursor, owned by the router's selection strategy. */
  cursor: number;
}

/** Receives matches; an object rather than closures so the hot path allocates nothing. */
export interface MatchSink<E> {
  onEntry(entry: E): void;
  onGroup(group: SharedGroup<E>): void;
}

class TrieNode<E> {
  readonly parent: TrieNode<E> | null;
  readonly key: string;
  children: Map<string, TrieNode<E>> | null = null;
  entries: Map<string, E> | null = null;
  groups: Map<string, SharedGroup<E>> | null = null;

  constructor(parent: TrieNode<E> | null, key: string) {
    this.parent = parent;
    this.key = key;
  }

  isEmpty(): boolean {
    return (
      (this.children === null || this.children.size === 0) &&
      (this.entries === null || this.entries.size === 0) &&
      (this.groups === null || this.groups.size === 0)
    );
  }
}

/** The matches of one topic, kept by the route cache. */
interface Route<E> {
  readonly entries: readonly E[];
  readonly groups: readonly SharedGroup<E>[] | null;
}

/** Collects the matches of one walk into fresh arrays (reused between cache misses). */
class Collector<E> implements MatchSink<E> {
  entries: E[] = [];
  groups: SharedGroup<E>[] | null = null;
  onEntry(entry: E): void {
    this.entries.push(entry);
  }
  onGroup(group: SharedGroup<E>): void {
    (this.groups ??= []).push(group);
  }
}

export interface TopicTrieOptions {
  /** Topics whose matches are cached (0 = no cache). Default DEFAULT_ROUTE_CACHE. */
  routeCacheSize?: number;
}

/**
 * Default route-cache size: enough for every topic of a busy broker's
 * steady publishers. A wider topic space keeps its busiest topics (two
 * generations), or, when most lookups miss, turns the cache off for a while.
 */
export const DEFAULT_ROUTE_CACHE = 10_000;

/** After a generation of mostly misses, walk this many times the cache size without it. */
const BYPASS_FACTOR = 16;

export class TopicTrie<E> {
  readonly #root = new TrieNode<E>(null, '');
  #size = 0;
  readonly #cacheMax: number;
  /** Route cache in two generations: new routes and hits go to #cur; #prev is the one before. */
  #cur = new Map<string, Route<E>>();
  #prev = new Map<string, Route<E>>();
  #hits = 0;
  #misses = 0;
  /** Matches left to walk without the cache, after a generation that mostly missed. */
  #bypass = 0;
  readonly #collector = new Collector<E>();
  readonly #empty: Route<E> = { entries: [], groups: null };
  /** Scratch for the levels of the topic being walked (cache misses only). */
  readonly #levels: string[] = [];

  constructor(options: TopicTrieOptions = {}) {
    const size = options.routeCacheSize ?? DEFAULT_ROUTE_CACHE;
    // Two generations of at least one topic each.
    this.#cacheMax = size === 0 ? 0 : Math.max(2, size);
  }

  /**
   * Told when a filter gets its first owner and loses its last one (the
   * cluster's route table follows these); null costs nothing.
   */
  onFilterChange: ((filter: string, present: boolean) => void) | null = null;

  /** Number of (filter, owner) entries, shared members included. */
  get size(): number {
    return this.#size;
  }

  /**
   * Add or replace the entry of `owner` for `filter` (which may be a
   * `$share/group/filter`). Returns true when it replaced an existing one.
   */
  add(filter: string, owner: string, entry: E): boolean {
    const shared = parseSharedFilter(filter);
    if (shared === null) throw new Error(`invalid shared filter ${filter}`);
    const node = this.#nodeFor(shared ? shared.filter : filter, true) as TrieNode<E>;
    let map: Map<string, E>;
    if (shared) {
      node.groups ??= new Map();
      let group = node.groups.get(shared.group);
      if (!group) {
        group = { name: shared.group, filter: shared.filter, key: filter, members: new Map(), cursor: 0 };
        node.groups.set(shared.group, group);
      }
      map = group.members;
    } else {
      map = node.entries ??= new Map();
    }
    const existed = map.has(owner);
    map.set(owner, entry);
    this.#invalidate();
    if (!existed) {
      this.#size++;
      if (map.size === 1 && this.onFilterChange !== null) this.onFilterChange(filter, true);
    }
    return existed;
  }

  /** Remove `owner`'s entry for `filter`; returns the removed entry. */
  remove(filter: string, owner: string): E | undefined {
    const shared = parseSharedFilter(filter);
    if (shared === null) return undefined;
    const node = this.#nodeFor(shared ? shared.filter : filter, false);
    if (!node) return undefined;
    let removed: E | undefined;
    if (shared) {
      const group = node.groups?.get(shared.group);
      removed = group?.members.get(owner);
      if (group && removed !== undefined) {
        group.members.delete(owner);
        if (group.members.size === 0) node.groups!.delete(shared.group);
      }
    } else {
      removed = node.entries?.get(owner);
      if (removed !== undefined) node.entries!.delete(owner);
    }
    if (removed === undefined) return undefined;
    this.#size--;
    this.#invalidate();
    if (this.onFilterChange !== null && (shared ? !node.groups?.has(shared.group) : node.entries!.size === 0)) {
      this.onFilterChange(filter, false);
    }
    this.#prune(node);
    return removed;
  }

  /** Entry of `owner` for exactly `filter`, if any. */
  get(filter: string, owner: string): E | undefined {
    const shared = parseSharedFilter(filter);
    if (shared === null) return undefined;
    const node = this.#nodeFor(shared ? shared.filter : filter, false);
    if (!node) return undefined;
    return shared ? node.groups?.get(shared.group)?.members.get(owner) : node.entries?.get(owner);
  }

  /** Topic routes held by the cache right now (a topic in both generations counts twice). */
  get cachedRoutes(): number {
    return this.#cur.size + this.#prev.size;
  }

  /** Report every entry and group whose filter matches `topic`. */
  match(topic: string, sink: MatchSink<E>): void {
    if (this.#cacheMax === 0 || this.#bypass > 0) {
      if (this.#bypass > 0) this.#bypass--;
      const levels = topic.split('/');
      // [MQTT-4.7.2-1] topics starting with `$` are not matched by a leading wildcard.
      this.#matchFrom(this.#root, levels, levels.length, 0, sink, topic.charCodeAt(0) === 0x24);
      return;
    }
    let route = this.#cur.get(topic);
    if (route === undefined) {
      route = this.#prev.get(topic);
      if (route === undefined) {
        route = this.#route(topic);
        this.#misses++;
      } else {
        this.#hits++;
      }
      this.#cur.set(topic, route);
      if (this.#cur.size >= this.#cacheMax >> 1) this.#rotate();
    } else {
      this.#hits++;
    }
    const entries = route.entries;
    for (let i = 0; i < entries.length; i++) sink.onEntry(entries[i]!);
    const groups = route.groups;
    if (groups !== null) for (let i = 0; i < groups.length; i++) sink.onGroup(groups[i]!);
  }

  /**
   * The current generation is full: it becomes the previous one (routes
   * used since then are kept, the rest go), so the cache holds at most
   * `routeCacheSize` topics and keeps the busy ones. A generation with more
   * misses than hits (the first one after an empty cache excepted) means the
   * topic space is too wide for the cache, where a miss costs more than a
   * plain walk: walk without it for a while.
   */
  #rotate(): void {
    // The first generation after an empty cache is all misses by nature: it is not judged.
    const useful = this.#hits >= this.#misses || this.#prev.size === 0;
    this.#hits = 0;
    this.#misses = 0;
    const old = this.#prev;
    old.clear();
    if (useful) {
      this.#prev = this.#cur;
      this.#cur = old;
    } else {
      this.#cur.clear();
      this.#bypass = this.#cacheMax * BYPASS_FACTOR;
    }
  }

  /**
   * Walk the trie for `topic` into a new Route. The levels go into a scratch
   * array (found by indexOf, no split array); the walk calls only the
   * collector, so nothing can re-enter and reuse the scratch meanwhile.
   */
  #route(topic: string): Route<E> {
    const levels = this.#levels;
    let count = 0;
    let pos = 0;
    for (;;) {
      const slash = topic.indexOf('/', pos);
      if (slash < 0) {
        levels[count++] = pos === 0 ? topic : topic.slice(pos);
        break;
      }
      levels[count++] = topic.slice(pos, slash);
      pos = slash + 1;
    }
    const collector = this.#collector;
    // [MQTT-4.7.2-1] topics starting with `$` are not matched by a leading wildcard.
    this.#matchFrom(this.#root, levels, count, 0, collector, topic.charCodeAt(0) === 0x24);
    levels.fill('', 0, count);
    if (collector.entries.length === 0 && collector.groups === null) return this.#empty;
    const route: Route<E> = { entries: collector.entries, groups: collector.groups };
    collector.entries = [];
    collector.groups = null;
    return route;
  }

  #invalidate(): void {
    if (this.#cur.size > 0) this.#cur.clear();
    if (this.#prev.size > 0) this.#prev.clear();
  }

  #matchFrom(start: TrieNode<E>, levels: string[], count: number, from: number, sink: MatchSink<E>, noRootWildcard: boolean): void {
    let node = start;
    for (let i = from; i < count; i++) {
      const children = node.children;
      if (children === null) return;
      if (!(noRootWildcard && i === 0)) {
        const hash = children.get('#');
        if (hash !== undefined) emit(hash, sink);
        const plus = children.get('+');
        if (plus !== undefined) this.#matchFrom(plus, levels, count, i + 1, sink, false);
      }
      const next = children.get(levels[i]!);
      if (next === undefined) return;
      node = next;
    }
    emit(node, sink);
    // `a/#` also matches `a` [MQTT-4.7.1-2].
    const hash = node.children?.get('#');
    if (hash !== undefined) emit(hash, sink);
  }

  /** Visit every (filter, owner, entry). Off the hot path (admin, persistence). */
  *entries(): Generator<{ filter: string; owner: string; entry: E }> {
    const stack: Array<{ node: TrieNode<E>; path: string[] }> = [{ node: this.#root, path: [] }];
    while (stack.length > 0) {
      const { node, path } = stack.pop()!;
      const filter = path.join('/');
      if (node.entries) for (const [owner, entry] of node.entries) yield { filter, owner, entry };
      if (node.groups) {
        for (const group of node.groups.values()) {
          for (const [owner, entry] of group.members) yield { filter: `$share/${group.name}/${filter}`, owner, entry };
        }
      }
      if (node.children) for (const [key, child] of node.children) stack.push({ node: child, path: [...path, key] });
    }
  }

  #nodeFor(filter: string, create: boolean): TrieNode<E> | undefined {
    let node = this.#root;
    let start = 0;
    for (;;) {
      const slash = filter.indexOf('/', start);
      const level = slash < 0 ? filter.slice(start) : filter.slice(start, slash);
      let next = node.children?.get(level);
      if (next === undefined) {
        if (!create) return undefined;
        next = new TrieNode<E>(node, level);
        (node.children ??= new Map()).set(level, next);
      }
      node = next;
      if (slash < 0) return node;
      start = slash + 1;
    }
  }

  #prune(from: TrieNode<E>): void {
    let node: TrieNode<E> | null = from;
    while (node !== null && node.parent !== null && node.isEmpty()) {
      node.parent.children!.delete(node.key);
      node = node.parent;
    }
  }
}

function emit<E>(node: TrieNode<E>, sink: MatchSink<E>): void {
  if (node.entries !== null) for (const entry of node.entries.values()) sink.onEntry(entry);
  if (node.groups !== null) for (const group of node.groups.values()) sink.onGroup(group);
}
