/**
 * The cluster route table: which node has subscribers for which filters.
 *
 * Each node owns `P cluster:routes:<node>` (a Redis set of the filters its
 * sessions subscribe to, shared ones as `$share/group/filter`) and announces
 * every change on the `P cluster:routes` channel. Every node keeps a local
 * copy of the other nodes' filters in a TopicTrie, so finding the nodes a
 * message must go to is one trie match, with no Redis round trip.
 *
 * Local changes come from the subscription trie's first-owner / last-owner
 * callbacks (a filter many clients share is one route), are batched per tick
 * into one pipeline (SADD/SREM + PUBLISH) and settle a promise that SUBACK
 * waits for, so a subscriber acknowledged on one node is reachable from all.
 *
 * The copy is rebuilt from the sets on start and after every reconnect to
 * Redis; announcements received while loading are applied after the load
 * (set operations, idempotent, in order per node).
 */
import type { Redis } from 'ioredis';
import { TopicTrie, type MatchSink, type SharedGroup } from '../broker/topic-trie.js';
import { TickFlush } from './tick-flush.js';

/** What one announcement carries. */
interface Announcement {
  /** Node. */
  n: string;
  /** Filters added. */
  a?: string[];
  /** Filters removed. */
  r?: string[];
  /** The node left: drop all of its routes. */
  gone?: true;
}

/** Where one message must go: filled by match(), reused between calls. */
export class RouteMatch implements MatchSink<string> {
  /** Nodes with a matching non-shared filter. */
  readonly nodes = new Set<string>();
  /** Shared groups (`$share/g/f`) that match, with the nodes that have members. */
  readonly groups = new Map<string, SharedGroup<string>>();

  onEntry(node: string): void {
    this.nodes.add(node);
  }

  onGroup(group: SharedGroup<string>): void {
    this.groups.set(group.key, group);
  }

  clear(): void {
    this.nodes.clear();
    this.groups.clear();
  }

  get empty(): boolean {
    return this.nodes.size === 0 && this.groups.size === 0;
  }
}

export class RouteTable {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #node: string;
  readonly #remote = new TopicTrie<string>();
  /** Remote node -> its filters (to drop them all when it leaves). */
  readonly #byNode = new Map<string, Set<string>>();
  /** This node's filters, as announced. */
  readonly #local = new Set<string>();
  /** Changes waiting for the next flush: filter -> present. */
  #pending = new Map<string, boolean>();
  readonly #flushing = new TickFlush(() => this.#flush(), (err) => this.onError(err));
  #loading: Announcement[] | null = null;
  onError: (err: unknown) => void = () => {};

  constructor(redis: Redis, prefix: string, node: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#node = node;
  }

  get channel(): string {
    return `${this.#prefix}cluster:routes`;
  }

  #key(node: string): string {
    return `${this.#prefix}cluster:routes:${node}`;
  }

  /** Filters this node announces. */
  get localFilters(): ReadonlySet<string> {
    return this.#local;
  }

  /** Number of (filter, node) routes known for other nodes. */
  get remoteSize(): number {
    return this.#remote.size;
  }

  /** A local filter got its first subscriber (present) or lost its last one. */
  change(filter: string, present: boolean): void {
    if (present) this.#local.add(filter);
    else this.#local.delete(filter);
    this.#pending.set(filter, present);
    // Waiters (SUBACK) see a failure; a reconnect republishes the whole set.
    this.#flushing.request();
  }

  /** The promise of the flush carrying changes made so far, or undefined when none wait. */
  pendingFlush(): Promise<void> | undefined {
    return this.#flushing.pending;
  }

  async #flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = new Map();
    const added: string[] = [];
    const removed: string[] = [];
    for (const [filter, present] of pending) (present ? added : removed).push(filter);
    const key = this.#key(this.#node);
    const multi = this.#redis.multi();
    if (added.length > 0) multi.sadd(key, ...added);
    if (removed.length > 0) multi.srem(key, ...removed);
    const message: Announcement = { n: this.#node };
    if (added.length > 0) message.a = added;
    if (removed.length > 0) message.r = removed;
    multi.publish(this.channel, JSON.stringify(message));
    await multi.exec();
  }

  /** Rewrite this node's set from memory (after a reconnect: the set may have been dropped meanwhile). */
  async republish(): Promise<void> {
    const key = this.#key(this.#node);
    const multi = this.#redis.multi().del(key);
    if (this.#local.size > 0) multi.sadd(key, ...this.#local);
    multi.publish(this.channel, JSON.stringify({ n: this.#node, gone: true }));
    if (this.#local.size > 0) multi.publish(this.channel, JSON.stringify({ n: this.#node, a: [...this.#local] }));
    await multi.exec();
  }

  /** Rebuild the copy of the other nodes' routes from Redis. */
  async load(nodes: readonly string[]): Promise<void> {
    this.#loading = [];
    try {
      const pipeline = this.#redis.pipeline();
      for (const node of nodes) pipeline.smembers(this.#key(node));
      const replies = (await pipeline.exec()) ?? [];
      for (const node of [...this.#byNode.keys()]) this.#drop(node);
      nodes.forEach((node, i) => {
        if (node === this.#node) return;
        const [err, filters] = replies[i] ?? [null, []];
        if (err) throw err;
        for (const filter of filters as string[]) this.#add(node, filter);
      });
      for (const a of this.#loading) this.#apply(a);
    } finally {
      this.#loading = null;
    }
  }

  /** An announcement from the channel. */
  receive(text: string): void {
    let a: Announcement;
    try {
      a = JSON.parse(text) as Announcement;
    } catch (err) {
      this.onError(err);
      return;
    }
    if (a.n === this.#node) return;
    if (this.#loading !== null) this.#loading.push(a);
    else this.#apply(a);
  }

  /** Forget a node that left (and remove its set). */
  async removeNode(node: string): Promise<void> {
    this.#drop(node);
    await this.#redis.multi().del(this.#key(node)).publish(this.channel, JSON.stringify({ n: node, gone: true })).exec();
  }

  /** Find the other nodes `topic` must go to. */
  match(topic: string, into: RouteMatch): void {
    into.clear();
    if (this.#remote.size > 0) this.#remote.match(topic, into);
  }

  #apply(a: Announcement): void {
    if (a.gone === true) this.#drop(a.n);
    for (const f of a.a ?? []) this.#add(a.n, f);
    for (const f of a.r ?? []) this.#remove(a.n, f);
  }

  #add(node: string, filter: string): void {
    let set = this.#byNode.get(node);
    if (set === undefined) this.#byNode.set(node, (set = new Set()));
    if (set.has(filter)) return;
    set.add(filter);
    this.#remote.add(filter, node, node);
  }

  #remove(node: string, filter: string): void {
    const set = this.#byNode.get(node);
    if (set === undefined || !set.delete(filter)) return;
    this.#remote.remove(filter, node);
    if (set.size === 0) this.#byNode.delete(node);
  }

  #drop(node: string): void {
    const set = this.#byNode.get(node);
    if (set === undefined) return;
    for (const filter of set) this.#remote.remove(filter, node);
    this.#byNode.delete(node);
  }
}
