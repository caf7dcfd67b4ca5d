/**
 * Routes one message to every matching session: trie match, per-session
 * dedupe of overlapping subscriptions (one delivery at the highest granted
 * QoS [MQTT-3.3.5-1]), no-local [MQTT-3.8.3-3], retain-as-published
 * [MQTT-3.3.1-12/13], QoS downgrade [MQTT-3.8.4-6] and one pick per shared
 * group [MQTT-4.8.2].
 *
 * The router is a MatchSink with reusable slots: matching allocates nothing
 * per subscriber on the common path. It is not re-entrant; a publish made
 * from inside a delivery callback is deferred until the current one ends.
 */
import type { QoS } from '../codec/types.js';
import type { Message } from './message.js';
import type { Session, SubscriptionEntry } from './session.js';
import type { MatchSink, SharedGroup, TopicTrie } from './topic-trie.js';

interface Slot {
  session: Session | null;
  qos: QoS;
  retain: boolean;
  subscriptionIds: number[] | undefined;
  group: SharedGroup<SubscriptionEntry> | undefined;
}

/** What part of the matching subscriptions one route() serves (cluster routing). */
export interface RouteScope {
  /** Deliver to non-shared subscriptions. */
  readonly normal: boolean;
  /** Shared groups (`$share/g/f`) not to serve here (another node serves them). */
  readonly skipGroups: ReadonlySet<string> | null;
  /** When set, the only shared groups to serve. */
  readonly onlyGroups: ReadonlySet<string> | null;
}

export type SharedStrategy = 'round_robin' | 'random' | 'sticky' | 'hash_client' | 'hash_topic';

export class Router implements MatchSink<SubscriptionEntry> {
  readonly #trie: TopicTrie<SubscriptionEntry>;
  readonly #slots: Slot[] = [];
  #count = 0;
  /**
   * Match epochs (Session.matchEpoch) shared by every router that can meet
   * the same sessions, so one router never mistakes another's scratch marks.
   */
  readonly epochs: { value: number };
  #epoch = 0;
  #message: Message | null = null;
  #busy = false;
  #deferred: Array<[Message, RouteScope | null]> = [];
  #scope: RouteScope | null = null;
  strategy: SharedStrategy = 'round_robin';

  constructor(trie: TopicTrie<SubscriptionEntry>, epochs: { value: number } = { value: 0 }) {
    this.#trie = trie;
    this.epochs = epochs;
  }

  /**
   * Deliver `message` to all matching sessions; returns the number of
   * sessions it went to. `scope` narrows it (a cluster shares the work).
   */
  route(message: Message, scope: RouteScope | null = null): number {
    if (this.#busy) {
      this.#deferred.push([message, scope]);
      return 0;
    }
    this.#busy = true;
    try {
      let delivered = this.#routeOne(message, scope);
      while (this.#deferred.length > 0) {
        const [m, s] = this.#deferred.shift()!;
        delivered += this.#routeOne(m, s);
      }
      return delivered;
    } finally {
      this.#busy = false;
    }
  }

  #routeOne(message: Message, scope: RouteScope | null): number {
    this.#scope = scope;
    this.#epoch = this.epochs.value = (this.epochs.value + 1) | 0;
    this.#count = 0;
    this.#message = message;
    this.#trie.match(message.topic, this);
    const count = this.#count;
    const slots = this.#slots;
    for (let i = 0; i < count; i++) {
      const slot = slots[i]!;
      const session = slot.session!;
      slot.session = null;
      session.deliver(message, slot.qos, slot.retain, slot.subscriptionIds, slot.group);
      slot.subscriptionIds = undefined;
      slot.group = undefined;
    }
    this.#message = null;
    this.#scope = null;
    return count;
  }

  onEntry(entry: SubscriptionEntry): void {
    if (this.#scope !== null && !this.#scope.normal) return;
    const message = this.#message!;
    // [MQTT-3.8.3-3] no-local: not back to the publisher.
    if (entry.noLocal && entry.session.clientId === message.origin) return;
    if (this.readCheck !== null && !this.readCheck(entry, message)) return;
    this.#add(entry, message);
  }

  /**
   * Delivery-time authorization (ACL read rules): set by the broker only
   * when a hook wants it, so routing pays nothing otherwise.
   */
  readCheck: ((entry: SubscriptionEntry, message: Message) => boolean) | null = null;

  onGroup(group: SharedGroup<SubscriptionEntry>): void {
    const scope = this.#scope;
    if (scope !== null && (scope.skipGroups?.has(group.key) === true || (scope.onlyGroups !== null && !scope.onlyGroups.has(group.key)))) return;
    const entry = this.#pick(group, this.#message!);
    if (entry === undefined) return;
    if (this.readCheck !== null && !this.readCheck(entry, this.#message!)) return;
    this.#add(entry, this.#message!, group);
  }

  /**
   * A shared-group member left with this message unfinished: give it to
   * another member of the group [MQTT-4.8.2-?]. Returns false if none is left.
   */
  handOff(message: Message, group: SharedGroup<SubscriptionEntry>): boolean {
    const entry = this.#pick(group, message);
    if (entry === undefined) return false;
    const qos = (entry.qos < message.qos ? entry.qos : message.qos) as QoS;
    entry.session.deliver(message, qos, entry.retainAsPublished ? message.retain : false,
      entry.subscriptionId !== undefined ? [entry.subscriptionId] : undefined, group);
    return true;
  }

  #add(entry: SubscriptionEntry, message: Message, group?: SharedGroup<SubscriptionEntry>): void {
    const session = entry.session;
    const qos = (entry.qos < message.qos ? entry.qos : message.qos) as QoS;
    const retain = entry.retainAsPublished ? message.retain : false;
    // A shared-group pick is its own delivery, never merged with the client's other subscriptions [MQTT-4.8.2-?].
    if (group === undefined && session.matchEpoch === this.#epoch) {
      const slot = this.#slots[session.matchSlot]!;
      if (qos > slot.qos) slot.qos = qos;
      if (retain) slot.retain = true;
      if (entry.subscriptionId !== undefined) (slot.subscriptionIds ??= []).push(entry.subscriptionId);
      return;
    }
    if (group === undefined) {
      session.matchEpoch = this.#epoch;
      session.matchSlot = this.#count;
    }
    let slot = this.#slots[this.#count];
    if (slot === undefined) {
      slot = { session: null, qos: 0, retain: false, subscriptionIds: undefined, group: undefined };
      this.#slots.push(slot);
    }
    slot.session = session;
    slot.qos = qos;
    slot.retain = retain;
    slot.subscriptionIds = entry.subscriptionId !== undefined ? [entry.subscriptionId] : undefined;
    slot.group = group;
    this.#count++;
  }

  /** One member per message: prefer connected members, starting where the strategy says. */
  #pick(group: SharedGroup<SubscriptionEntry>, message: Message): SubscriptionEntry | undefined {
    const size = group.members.size;
    if (size === 0) return undefined;
    let start: number;
    switch (this.strategy) {
      case 'random':
        start = Math.floor(Math.random() * size);
        break;
      case 'hash_client':
        start = hash(message.origin ?? '') % size;
        break;
      case 'hash_topic':
        start = hash(message.topic) % size;
        break;
      case 'sticky':
        // Stay on the last member picked (cursor - 1) while it is connected.
        start = (group.cursor + size - 1) % size;
        break;
      default:
        start = group.cursor % size;
    }
    let fallback: SubscriptionEntry | undefined;
    let i = 0;
    // Map iteration from `start`, wrapping; O(members) but allocation-free.
    for (let pass = 0; pass < 2; pass++) {
      for (const entry of group.members.values()) {
        const index = i++;
        if (pass === 0 && index < start) continue;
        if (pass === 1 && index >= start + size) break;
        if (entry.session.link !== null) {
          group.cursor = (index % size) + 1;
          return entry;
        }
        fallback ??= entry;
      }
    }
    group.cursor = start + 1;
    return fallback;
  }
}

/** FNV-1a over UTF-16 code units: a stable, cheap spread for the hash strategies. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
