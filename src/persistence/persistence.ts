/**
 * The storage contract every backend (memory, sqlite, later redis) meets; the
 * suite in test/persistence/contract.ts checks it (P4).
 *
 * Writes go through one method, `commit(ops)`, applied atomically and in
 * order: all of a commit's ops land or none do. The broker batches ops from
 * many clients through a WriteQueue (write-queue.ts), so a commit is usually a
 * group of unrelated callers' ops.
 *
 * Semantics shared by all backends:
 * - Messages are stored once and referenced by outbound entries and retained
 *   slots. A message no entry or slot references is garbage-collected when the
 *   commit ends, so a putMessage must travel in the same commit as its first
 *   reference (putMessage is idempotent: an id already stored keeps its copy,
 *   so repeating it in every submission that references it is safe).
 * - putSubscription, putOutbound and putInbound need the client's session to
 *   exist (put earlier in the commit or before); putOutbound needs its message.
 *   A commit breaking either rule is rejected with ERR_STORAGE_INVALID_OP.
 *   Deletes of things that do not exist are no-ops.
 * - Retained limits (`maxRetained`, `maxRetainedBytes`, 0 = unlimited): a
 *   putRetained that would grow the retained set past a limit (a new topic over
 *   the count limit, or more payload bytes over the byte limit) rejects the
 *   whole commit with ERR_STORAGE_RETAINED_LIMIT. Replacing a retained message
 *   with one no larger always succeeds. Submit retained writes through the
 *   WriteQueue as their own submission: a rejected one then fails alone (the
 *   queue retries a failed group one submission at a time), and the broker can
 *   still deliver the message and answer the publisher with Quota exceeded.
 * - Every method rejects with ERR_STORAGE_CLOSED before open() / after close().
 */
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

export type StorageOp =
  /** Upsert by clientId. Never touches the session's subscriptions or queues. */
  | { type: 'putSession'; session: SessionRecord }
  /** Deletes the session with its subscriptions, outbound entries and inbound ids. */
  | { type: 'deleteSession'; clientId: string }
  /** Upsert by (clientId, filter). */
  | { type: 'putSubscription'; clientId: string; subscription: StoredSubscription }
  | { type: 'deleteSubscription'; clientId: string; filter: string }
  /** Insert if the id is new; see the GC rule above. */
  | { type: 'putMessage'; message: StoredMessage }
  /**
   * Upsert by (clientId, entry.seq). `fresh`: a hint for the WriteQueue (backends
   * ignore it), set by a caller that knows no earlier op wrote this key, so that a
   * deleteOutbound of it before its group starts cancels both ops outright.
   */
  | { type: 'putOutbound'; clientId: string; entry: OutboundEntry; fresh?: boolean }
  | { type: 'deleteOutbound'; clientId: string; seq: number }
  /** QoS 2 packet id received and awaiting PUBREL. */
  | { type: 'putInbound'; clientId: string; packetId: number }
  | { type: 'deleteInbound'; clientId: string; packetId: number }
  /** Upsert by message.topic; stores the message (as putMessage) and references it. */
  | { type: 'putRetained'; message: StoredMessage }
  | { type: 'deleteRetained'; topic: string };

export type StorageOpType = StorageOp['type'];

export interface Persistence {
  open(): Promise<void>;
  /** Releases files and locks; idempotent. */
  close(): Promise<void>;
  /** Applies `ops` in order, atomically: all or nothing. */
  commit(ops: readonly StorageOp[]): Promise<void>;
  /** Highest message id ever stored (0 for a new store); ids of collected messages still count. */
  lastMessageId(): Promise<number>;

  /** Every session, streamed (no full load). */
  loadSessions(): AsyncIterable<SessionRecord>;
  getSession(clientId: string): Promise<SessionRecord | undefined>;
  /** Every subscription of every session, streamed, to rebuild the router at start. */
  loadSubscriptions(): AsyncIterable<ClientSubscription>;
  getSubscriptions(clientId: string): Promise<StoredSubscription[]>;
  /** The client's outbound entries with their messages, ordered by seq. */
  loadOutbound(clientId: string): Promise<OutboundWithMessage[]>;
  /** QoS 2 packet ids awaiting PUBREL, ascending. */
  loadInbound(clientId: string): Promise<number[]>;
  /**
   * Optional, for start-up: every client's outbound entries with their
   * messages, streamed (no full load); one client's entries come together and
   * in seq order, as loadOutbound gives them. Saves a query per session.
   */
  loadAllOutbound?(): AsyncIterable<ClientOutbound>;
  /** Optional, for start-up: every client's QoS 2 packet ids awaiting PUBREL, streamed; one client's together, ascending. */
  loadAllInbound?(): AsyncIterable<ClientInbound>;

  /**
   * Retained messages whose topic matches `filter` (wildcards allowed), found
   * without scanning every retained message where the filter has a literal
   * prefix. Topics starting with `$` do not match a filter starting with a
   * wildcard [MQTT-4.7.2-1]. Order is unspecified.
   */
  matchRetained(filter: string): AsyncIterable<StoredMessage>;
  getRetained(topic: string): Promise<StoredMessage | undefined>;
  retainedStats(): Promise<RetainedStats>;

  /**
   * Deletes sessions that expired by `now` (ms epoch): disconnectedAt +
   * expiryInterval * 1000 <= now, never for expiryInterval 0xFFFFFFFF nor while
   * connected; with all their data. Drops queued (never sent) outbound entries
   * and retained slots whose message expired (expiresAt <= now); entries
   * already sent stay so their QoS flow can complete.
   */
  purgeExpired(now: number): Promise<PurgeResult>;
}

/** Options every backend understands. */
export interface RetainedLimits {
  /** Max retained messages; 0 = unlimited. */
  maxRetained?: number;
  /** Max sum of retained payload bytes; 0 = unlimited. */
  maxRetainedBytes?: number;
}
