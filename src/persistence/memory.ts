/**
 * MemoryPersistence: the reference backend (Maps, plus a topic-level trie for
 * retained messages). Nothing survives the process; everything else behaves as
 * the durable backends do, and the contract suite holds it to that.
 *
 * Invariants:
 * - `#messages` holds each stored message once, with `refs` = number of
 *   outbound entries plus retained slots that reference it. A message whose
 *   refs are 0 at the end of a commit is deleted (candidates are collected
 *   during the commit, so no sweep over all messages).
 * - `#retainedBytes` = sum of payload lengths in `#retained`.
 * - `#expiring` holds the ids of stored messages that have an expiresAt, with
 *   the clients that queued them, so purgeExpired() never scans everything.
 * - commit() validates every op against the state the earlier ops of the same
 *   commit would produce before applying any, so a rejected commit changes
 *   nothing; the apply pass cannot fail.
 */
import { ternError } from '../errors.js';
import type { Persistence, RetainedLimits, StorageOp } from './persistence.js';
import { cloneEntry, cloneMessage, cloneSession, cloneSubscription, sessionExpiresAt } from './records.js';
import { RetainedTrie } from './retained-trie.js';
import type {
  ClientInbound,
  ClientOutbound,
  ClientSubscription,
  OutboundEntry,
  OutboundWithMessage,
  PurgeResult,
  RetainedStats,
  SessionRecord,
  StoredMessage,
  StoredSubscription,
} from './types.js';

interface MessageSlot {
  message: StoredMessage;
  refs: number;
}

interface ClientData {
  session: SessionRecord;
  subscriptions: Map<string, StoredSubscription>;
  outbound: Map<number, OutboundEntry>;
  inbound: Set<number>;
}

export class MemoryPersistence implements Persistence {
  readonly #maxRetained: number;
  readonly #maxRetainedBytes: number;
  #open = false;
  readonly #clients = new Map<string, ClientData>();
  readonly #messages = new Map<number, MessageSlot>();
  readonly #retained = new RetainedTrie<StoredMessage>();
  #retainedBytes = 0;
  /** message id -> client ids that queued it (possibly stale; rechecked on purge). */
  readonly #expiring = new Map<number, Set<string>>();
  #lastMessageId = 0;
  /** Message ids whose refs may have dropped to 0 during the current commit. */
  readonly #gcCandidates = new Set<number>();

  constructor(opts: RetainedLimits = {}) {
    this.#maxRetained = opts.maxRetained ?? 0;
    this.#maxRetainedBytes = opts.maxRetainedBytes ?? 0;
  }

  async open(): Promise<void> {
    this.#open = true;
  }

  async close(): Promise<void> {
    this.#open = false;
  }

  async commit(ops: readonly StorageOp[]): Promise<void> {
    this.#checkOpen();
    this.#validate(ops);
    for (const op of ops) this.#apply(op);
    this.#collectGarbage();
  }

  async lastMessageId(): Promise<number> {
    this.#checkOpen();
    return this.#lastMessageId;
  }

  async *loadSessions(): AsyncIterable<SessionRecord> {
    this.#checkOpen();
    const snapshot: SessionRecord[] = [];
    for (const c of this.#clients.values()) snapshot.push(cloneSession(c.session));
    yield* snapshot;
  }

  async getSession(clientId: string): Promise<SessionRecord | undefined> {
    this.#checkOpen();
    const c = this.#clients.get(clientId);
    return c === undefined ? undefined : cloneSession(c.session);
  }

  async *loadSubscriptions(): AsyncIterable<ClientSubscription> {
    this.#checkOpen();
    const snapshot: ClientSubscription[] = [];
    for (const [clientId, c] of this.#clients) {
      for (const s of c.subscriptions.values()) snapshot.push({ clientId, subscription: cloneSubscription(s) });
    }
    yield* snapshot;
  }

  async getSubscriptions(clientId: string): Promise<StoredSubscription[]> {
    this.#checkOpen();
    const c = this.#clients.get(clientId);
    return c === undefined ? [] : Array.from(c.subscriptions.values(), cloneSubscription);
  }

  async loadOutbound(clientId: string): Promise<OutboundWithMessage[]> {
    this.#checkOpen();
    const c = this.#clients.get(clientId);
    if (c === undefined) return [];
    const out: OutboundWithMessage[] = [];
    for (const entry of c.outbound.values()) {
      const slot = this.#messages.get(entry.messageId)!;
      out.push({ entry: cloneEntry(entry), message: cloneMessage(slot.message) });
    }
    return out.sort(bySeq);
  }

  async loadInbound(clientId: string): Promise<number[]> {
    this.#checkOpen();
    const c = this.#clients.get(clientId);
    return c === undefined ? [] : Array.from(c.inbound).sort(ascending);
  }

  async *loadAllOutbound(): AsyncIterable<ClientOutbound> {
    this.#checkOpen();
    for (const clientId of Array.from(this.#clients.keys())) {
      for (const o of await this.loadOutbound(clientId)) yield { clientId, entry: o.entry, message: o.message };
    }
  }

  async *loadAllInbound(): AsyncIterable<ClientInbound> {
    this.#checkOpen();
    for (const clientId of Array.from(this.#clients.keys())) {
      for (const packetId of await this.loadInbound(clientId)) yield { clientId, packetId };
    }
  }

  async *matchRetained(filter: string): AsyncIterable<StoredMessage> {
    this.#checkOpen();
    const found: StoredMessage[] = [];
    this.#retained.match(filter, found);
    for (const m of found) yield cloneMessage(m);
  }

  async getRetained(topic: string): Promise<StoredMessage | undefined> {
    this.#checkOpen();
    const m = this.#retained.get(topic);
    return m === undefined ? undefined : cloneMessage(m);
  }

  async retainedStats(): Promise<RetainedStats> {
    this.#checkOpen();
    return { count: this.#retained.size, bytes: this.#retainedBytes };
  }

  async purgeExpired(now: number): Promise<PurgeResult> {
    this.#checkOpen();
    const sessions: string[] = [];
    for (const [clientId, c] of this.#clients) {
      const expiresAt = sessionExpiresAt(c.session);
      if (expiresAt !== null && expiresAt <= now) sessions.push(clientId);
    }
    for (const clientId of sessions) this.#deleteSession(clientId);
    let messages = 0;
    for (const [id, holders] of this.#expiring) {
      const slot = this.#messages.get(id);
      if (slot === undefined) {
        this.#expiring.delete(id);
        continue;
      }
      const expiresAt = slot.message.expiresAt!;
      if (expiresAt > now) continue;
      for (const clientId of holders) {
        const c = this.#clients.get(clientId);
        if (c === undefined) continue;
        for (const [seq, entry] of c.outbound) {
          if (entry.messageId === id && entry.state === 'queued') {
            c.outbound.delete(seq);
            this.#unref(id);
            messages++;
          }
        }
      }
      holders.clear();
      const retained = this.#retained.get(slot.message.topic);
      if (retained !== undefined && retained.id === id) {
        this.#deleteRetained(slot.message.topic);
        messages++;
      }
    }
    this.#collectGarbage();
    return { sessions, messages };
  }

  #checkOpen(): void {
    if (!this.#open) throw ternError('ERR_STORAGE_CLOSED');
  }

  /** Throws if applying `ops` in order would break a rule; changes nothing. */
  #validate(ops: readonly StorageOp[]): void {
    // Overlays of what the commit's earlier ops change.
    let sessions: Map<string, boolean> | null = null;
    let messages: Set<number> | null = null;
    let retained: Map<string, number> | null = null; // topic -> payload bytes, -1 = deleted
    let count = this.#retained.size;
    let bytes = this.#retainedBytes;
    const hasSession = (clientId: string): boolean => sessions?.get(clientId) ?? this.#clients.has(clientId);
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      switch (op.type) {
        case 'putSession':
          (sessions ??= new Map()).set(op.session.clientId, true);
          break;
        case 'deleteSession':
          (sessions ??= new Map()).set(op.clientId, false);
          break;
        case 'putSubscription':
        case 'putInbound':
          if (!hasSession(op.clientId)) throw noSession(op.type, op.clientId);
          break;
        case 'putOutbound':
          if (!hasSession(op.clientId)) throw noSession(op.type, op.clientId);
          if (!this.#messages.has(op.entry.messageId) && !(messages?.has(op.entry.messageId) ?? false)) {
            throw ternError('ERR_STORAGE_INVALID_OP', `putOutbound references unknown message ${op.entry.messageId}`);
          }
          break;
        case 'putMessage':
          (messages ??= new Set()).add(op.message.id);
          break;
        case 'putRetained': {
          const topic = op.message.topic;
          (messages ??= new Set()).add(op.message.id);
          const prev = retained?.get(topic) ?? this.#retained.get(topic)?.payload.length ?? -1;
          const size = op.message.payload.length;
          if (prev < 0) count++;
          bytes += size - (prev < 0 ? 0 : prev);
          if (this.#maxRetained > 0 && prev < 0 && count > this.#maxRetained) {
            throw ternError('ERR_STORAGE_RETAINED_LIMIT', `${this.#maxRetained} retained messages (topic ${topic})`);
          }
          if (this.#maxRetainedBytes > 0 && size > Math.max(prev, 0) && bytes > this.#maxRetainedBytes) {
            throw ternError('ERR_STORAGE_RETAINED_LIMIT', `${this.#maxRetainedBytes} retained bytes (topic ${topic})`);
          }
          (retained ??= new Map()).set(topic, size);
          break;
        }
        case 'deleteRetained': {
          const prev = retained?.get(op.topic) ?? this.#retained.get(op.topic)?.payload.length ?? -1;
          if (prev >= 0) {
            count--;
            bytes -= prev;
          }
          (retained ??= new Map()).set(op.topic, -1);
          break;
        }
        case 'deleteSubscription':
        case 'deleteOutbound':
        case 'deleteInbound':
          break;
        default:
          throw ternError('ERR_STORAGE_INVALID_OP', `unknown op ${JSON.stringify((op as { type?: unknown }).type)}`);
      }
    }
  }

  #apply(op: StorageOp): void {
    switch (op.type) {
      case 'putSession': {
        const session = cloneSession(op.session);
        const c = this.#clients.get(session.clientId);
        if (c !== undefined) c.session = session;
        else {
          this.#clients.set(session.clientId, {
            session,
            subscriptions: new Map(),
            outbound: new Map(),
            inbound: new Set(),
          });
        }
        break;
      }
      case 'deleteSession':
        this.#deleteSession(op.clientId);
        break;
      case 'putSubscription':
        this.#clients.get(op.clientId)!.subscriptions.set(op.subscription.filter, cloneSubscription(op.subscription));
        break;
      case 'deleteSubscription':
        this.#clients.get(op.clientId)?.subscriptions.delete(op.filter);
        break;
      case 'putMessage':
        this.#putMessage(op.message);
        break;
      case 'putOutbound': {
        const entry = cloneEntry(op.entry);
        const outbound = this.#clients.get(op.clientId)!.outbound;
        const old = outbound.get(entry.seq);
        this.#ref(entry.messageId, op.clientId);
        if (old !== undefined) this.#unref(old.messageId);
        outbound.set(entry.seq, entry);
        break;
      }
      case 'deleteOutbound': {
        const outbound = this.#clients.get(op.clientId)?.outbound;
        const old = outbound?.get(op.seq);
        if (old !== undefined) {
          outbound!.delete(op.seq);
          this.#unref(old.messageId);
        }
        break;
      }
      case 'putInbound':
        this.#clients.get(op.clientId)!.inbound.add(op.packetId);
        break;
      case 'deleteInbound':
        this.#clients.get(op.clientId)?.inbound.delete(op.packetId);
        break;
      case 'putRetained': {
        const stored = this.#putMessage(op.message);
        this.#ref(stored.id, null);
        const old = this.#retained.set(stored.topic, stored);
        this.#retainedBytes += stored.payload.length;
        if (old !== undefined) {
          this.#retainedBytes -= old.payload.length;
          this.#unref(old.id);
        }
        break;
      }
      case 'deleteRetained':
        this.#deleteRetained(op.topic);
        break;
    }
  }

  /** Stores `message` unless its id is already stored; returns the stored copy. */
  #putMessage(message: StoredMessage): StoredMessage {
    const slot = this.#messages.get(message.id);
    if (slot !== undefined) return slot.message;
    const stored = cloneMessage(message);
    this.#messages.set(stored.id, { message: stored, refs: 0 });
    this.#gcCandidates.add(stored.id);
    if (stored.id > this.#lastMessageId) this.#lastMessageId = stored.id;
    if (stored.expiresAt !== undefined) this.#expiring.set(stored.id, new Set());
    return stored;
  }

  #ref(id: number, clientId: string | null): void {
    this.#messages.get(id)!.refs++;
    if (clientId !== null) this.#expiring.get(id)?.add(clientId);
  }

  #unref(id: number): void {
    const slot = this.#messages.get(id)!;
    if (--slot.refs === 0) this.#gcCandidates.add(id);
  }

  #deleteSession(clientId: string): void {
    const c = this.#clients.get(clientId);
    if (c === undefined) return;
    this.#clients.delete(clientId);
    for (const entry of c.outbound.values()) this.#unref(entry.messageId);
  }

  #deleteRetained(topic: string): void {
    const old = this.#retained.delete(topic);
    if (old === undefined) return;
    this.#retainedBytes -= old.payload.length;
    this.#unref(old.id);
  }

  #collectGarbage(): void {
    for (const id of this.#gcCandidates) {
      const slot = this.#messages.get(id);
      if (slot !== undefined && slot.refs === 0) {
        this.#messages.delete(id);
        this.#expiring.delete(id);
      }
    }
    this.#gcCandidates.clear();
  }
}

function noSession(type: string, clientId: string): Error {
  return ternError('ERR_STORAGE_INVALID_OP', `${type} for client ${JSON.stringify(clientId)} without a session`);
}

function bySeq(a: OutboundWithMessage, b: OutboundWithMessage): number {
  return a.entry.seq - b.entry.seq;
}

function ascending(a: number, b: number): number {
  return a - b;
}
