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
 *   and its depth is bounded by the configured max topic levels.
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

export class TopicTrie<E> {
  readonly #root = new TrieNode<E>(null, '');
  #size = 0;
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

  /** Report every entry and group whose filter matches `topic`. */
  match(topic: string, sink: MatchSink<E>): void {
    const levels = topic.split('/');
    // [MQTT-4.7.2-1] topics starting with `$` are not matched by a leading wildcard.
    const dollar = topic.charCodeAt(0) === 0x24;
    this.#matchFrom(this.#root, levels, 0, sink, dollar);
  }

  #matchFrom(start: TrieNode<E>, levels: string[], from: number, sink: MatchSink<E>, noRootWildcard: boolean): void {
    let node = start;
    for (let i = from; i < levels.length; i++) {
      const children = node.children;
      if (children === null) return;
      if (!(noRootWildcard && i === 0)) {
        const hash = children.get('#');
        if (hash !== undefined) emit(hash, sink);
        const plus = children.get('+');
        if (plus !== undefined) this.#matchFrom(plus, levels, i + 1, sink, false);
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
