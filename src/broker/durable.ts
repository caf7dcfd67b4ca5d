/**
 * The broker's side of storage: turns session and message changes into
 * StorageOps, groups them (one WriteQueue submission per flush), and
 * restores sessions, subscriptions and queues at start-up.
 *
 * The ack chain: a handler that must not acknowledge before its changes are
 * durable (QoS 1/2 PUBLISH, SUBSCRIBE, CONNECT of a persistent session) calls
 * flush() after making them and waits for the returned promise. Everything
 * else buffered is flushed once per tick. The WriteQueue applies submissions
 * in order, so a later state change never overtakes the op that created it.
 *
 * Only persistent sessions (expiry > 0) and their QoS 1/2 messages are
 * stored; clean sessions cost nothing here.
 */
import type { Will } from '../codec/types.js';
import type { HookClient } from '../hooks/types.js';
import type { Persistence, StorageOp } from '../persistence/persistence.js';
import type { OutboundWithMessage, SessionRecord, StoredMessage, StoredSubscription, StoredWill } from '../persistence/types.js';
import { WriteQueue } from '../persistence/write-queue.js';
import { Message } from './message.js';
import { OutState, type Outbound, type Session, type SubscriptionEntry } from './session.js';

const STATE_NAMES = ['queued', 'sent', 'pubrel'] as const;

export class Durable {
  readonly persistence: Persistence;
  readonly #queue: WriteQueue;
  #buffer: StorageOp[] = [];
  #scheduled = false;
  #nextMessageId = 1;
  /** Retained writes not yet committed: topic -> message (null = cleared). */
  readonly pendingRetained = new Map<string, Message | null>();
  /** Where stored-message ids come from when not this store's own counter (a cluster's shared id blocks). */
  idSource: (() => number) | null = null;
  /** Called when a background flush (state changes nobody waits for) fails. */
  onBackgroundError: (err: unknown) => void = () => {};
  /**
   * Told how long each storage commit took, in seconds (the metrics'
   * latency histogram). Once per commit group, never per message; null: not timed.
   */
  commitObserver: ((seconds: number) => void) | null = null;

  constructor(persistence: Persistence, groupDelayMs: number) {
    this.persistence = persistence;
    this.#queue = new WriteQueue({ commit: (ops) => this.#commit(ops) }, { maxDelayMs: groupDelayMs });
  }

  #commit(ops: readonly StorageOp[]): Promise<void> {
    const observe = this.commitObserver;
    if (observe === null) return this.persistence.commit(ops);
    const started = performance.now();
    const done = (): void => observe((performance.now() - started) / 1000);
    const p = this.persistence.commit(ops);
    p.then(done, done);
    return p;
  }

  async open(): Promise<void> {
    await this.persistence.open();
    this.#nextMessageId = (await this.persistence.lastMessageId()) + 1;
  }

  /** Flush what is buffered and close the store. */
  async close(): Promise<void> {
    await this.flush().catch(() => {});
    await this.#queue.close();
    await this.persistence.close();
  }

  // ---- buffering ----

  put(op: StorageOp): void {
    this.#buffer.push(op);
    if (!this.#scheduled) {
      this.#scheduled = true;
      process.nextTick(flushSoon, this);
    }
  }

  /** True when changes wait to be submitted. */
  get dirty(): boolean {
    return this.#buffer.length > 0;
  }

  /**
   * Submit everything buffered as one group; resolves once it (and every
   * earlier submission) is committed.
   */
  flush(): Promise<void> {
    this.#scheduled = false;
    const ops = this.#buffer;
    this.#buffer = [];
    return this.#queue.submit(ops);
  }

  // ---- records ----

  storedMessage(message: Message): StoredMessage {
    if (message.id === 0) message.id = this.idSource !== null ? this.idSource() : this.#nextMessageId++;
    const stored: StoredMessage = {
      id: message.id,
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      createdAt: Date.now(),
    };
    if (message.properties !== undefined) stored.properties = message.properties;
    if (message.expiresAt !== undefined) stored.expiresAt = message.expiresAt;
    return stored;
  }

  /**
   * Record the session as it is now: while connected its will is the
   * connection's; once disconnected only a will still waiting out its delay
   * is kept (a will already published must not go out again after a restart).
   */
  putSession(session: Session): void {
    const connected = session.disconnectedAt === null;
    const record: SessionRecord = {
      clientId: session.clientId,
      protocolLevel: session.protocolLevel,
      expiryInterval: session.expiryInterval,
      disconnectedAt: session.disconnectedAt,
      createdAt: Date.now(),
    };
    const will = connected ? session.will : session.pendingWill;
    if (will !== undefined) record.will = storedWill(will);
    const username = session.client?.username;
    if (username !== undefined) record.username = username;
    session.stored = true;
    this.put({ type: 'putSession', session: record });
  }

  deleteSession(clientId: string): void {
    this.put({ type: 'deleteSession', clientId });
  }

  putSubscription(clientId: string, entry: SubscriptionEntry): void {
    const subscription: StoredSubscription = {
      filter: entry.filter,
      qos: entry.qos,
      noLocal: entry.noLocal,
      retainAsPublished: entry.retainAsPublished,
      retainHandling: entry.retainHandling,
    };
    if (entry.subscriptionId !== undefined) subscription.subscriptionId = entry.subscriptionId;
    this.put({ type: 'putSubscription', clientId, subscription });
  }

  deleteSubscription(clientId: string, filter: string): void {
    this.put({ type: 'deleteSubscription', clientId, filter });
  }

  putOutbound(session: Session, out: Outbound): void {
    // putMessage is idempotent; it travels with every reference (see Persistence).
    this.put({ type: 'putMessage', message: this.storedMessage(out.message) });
    const entry: { seq: number; messageId: number; qos: 0 | 1 | 2; state: 'queued' | 'sent' | 'pubrel'; packetId?: number; subscriptionIds?: number[]; retain?: boolean } = {
      seq: out.seq,
      messageId: out.message.id,
      qos: out.qos,
      state: STATE_NAMES[out.state],
      retain: out.retain,
    };
    if (out.packetId !== 0) entry.packetId = out.packetId;
    if (out.subscriptionIds !== undefined) entry.subscriptionIds = out.subscriptionIds;
    // The first write of a delivery is `fresh`: acknowledged before its group starts, it is never written.
    const fresh = out.written !== true;
    out.written = true;
    this.put({ type: 'putOutbound', clientId: session.clientId, entry, fresh });
  }

  deleteOutbound(session: Session, out: Outbound): void {
    this.put({ type: 'deleteOutbound', clientId: session.clientId, seq: out.seq });
  }

  putInbound(clientId: string, packetId: number): void {
    this.put({ type: 'putInbound', clientId, packetId });
  }

  deleteInbound(clientId: string, packetId: number): void {
    this.put({ type: 'deleteInbound', clientId, packetId });
  }

  /**
   * Retained writes go in their own submission, so a store at its retained
   * limit fails only this write (the caller reports quota exceeded).
   */
  setRetained(message: Message): Promise<void> {
    const topic = message.topic;
    const value = message.payload.length === 0 ? null : message;
    this.pendingRetained.set(topic, value);
    const op: StorageOp =
      value === null ? { type: 'deleteRetained', topic } : { type: 'putRetained', message: this.storedMessage(message) };
    const done = (): void => {
      if (this.pendingRetained.get(topic) === value) this.pendingRetained.delete(topic);
    };
    // Buffered ops first, so the store sees changes in the order they were made.
    if (this.dirty) this.flush().catch((err: unknown) => this.onBackgroundError(err));
    const p = this.#queue.submit([op]);
    p.then(done, done);
    return p;
  }

  // ---- restore ----

  /** Rebuild a Message from its stored form (shared by every entry that references it). */
  static toMessage(stored: StoredMessage): Message {
    const message = new Message({
      topic: stored.topic,
      payload: stored.payload,
      qos: stored.qos,
      retain: stored.retain,
      properties: stored.properties,
      expiresAt: stored.expiresAt,
    });
    message.id = stored.id;
    return message;
  }

  /**
   * At start-up: every restored session's stored outbound messages and QoS 2
   * ids awaiting PUBREL, in one streamed pass over the store when the backend
   * offers one (loadAllOutbound / loadAllInbound), else a query per session.
   * Entries of clients not in `sessions` (another cluster node's) are skipped.
   */
  async loadQueues(sessions: ReadonlyMap<string, Session>): Promise<void> {
    const p = this.persistence;
    const cache = new Map<number, Message>();
    if (p.loadAllOutbound === undefined || p.loadAllInbound === undefined) {
      for (const session of sessions.values()) {
        await this.loadOutbound(session, cache);
        for (const id of await p.loadInbound(session.clientId)) session.inboundQos2.add(id);
      }
      return;
    }
    let session: Session | undefined;
    for await (const row of p.loadAllOutbound()) {
      if (session?.clientId !== row.clientId) session = sessions.get(row.clientId);
      if (session !== undefined) this.#restoreOutbound(session, row, cache);
    }
    session = undefined;
    for await (const { clientId, packetId } of p.loadAllInbound()) {
      if (session?.clientId !== clientId) session = sessions.get(clientId);
      session?.inboundQos2.add(packetId);
    }
  }

  /** The session's stored outbound messages as Outbounds, in order. */
  async loadOutbound(session: Session, cache: Map<number, Message>): Promise<void> {
    for (const row of await this.persistence.loadOutbound(session.clientId)) this.#restoreOutbound(session, row, cache);
  }

  #restoreOutbound(session: Session, { entry, message: stored }: OutboundWithMessage, cache: Map<number, Message>): void {
    let message = cache.get(stored.id);
    if (message === undefined) {
      message = Durable.toMessage(stored);
      cache.set(stored.id, message);
    }
    const state = entry.state === 'queued' ? OutState.QUEUED : entry.state === 'sent' ? OutState.SENT : OutState.PUBREL;
    const out: Outbound = {
      message,
      qos: entry.qos,
      retain: entry.retain ?? false,
      subscriptionIds: entry.subscriptionIds,
      packetId: entry.packetId ?? 0,
      state: state === OutState.QUEUED || entry.packetId === undefined ? OutState.QUEUED : state,
      seq: entry.seq,
      written: true,
    };
    session.restore(out);
  }
}

function flushSoon(d: Durable): void {
  if (d.dirty) d.flush().catch((err: unknown) => d.onBackgroundError(err));
}

function storedWill(will: Will): StoredWill {
  const stored: StoredWill = {
    topic: will.topic,
    payload: will.payload,
    qos: will.qos,
    retain: will.retain,
    delayInterval: will.properties?.willDelayInterval ?? 0,
  };
  if (will.properties !== undefined) stored.properties = will.properties;
  return stored;
}

export function willFromStored(stored: StoredWill): Will {
  const will: Will = { topic: stored.topic, payload: stored.payload, qos: stored.qos, retain: stored.retain };
  if (stored.properties !== undefined) will.properties = stored.properties;
  return will;
}

/**
 * Who a session restored from the store belongs to, for authorization hooks
 * (ACL read rules at delivery) until its client reconnects: the stored client
 * id and username, with no connection behind it (empty address and listener).
 */
export function clientFromStored(record: SessionRecord): HookClient {
  return { clientId: record.clientId, username: record.username, info: RESTORED_INFO };
}

const RESTORED_INFO = Object.freeze({ remoteAddress: '', remotePort: 0, listener: '' });
