/**
 * Records kept by a Persistence backend. They are plain data: a backend
 * stores a copy on commit and hands out fresh copies on load, so callers may
 * keep or mutate what they get without touching the store.
 *
 * Invariants:
 * - Buffers (payloads, binary properties such as correlation data) round-trip
 *   byte for byte; optional fields that were absent come back absent (never null).
 * - A StoredMessage is immutable once stored: its id names one content forever.
 */
import type { Properties, QoS } from '../codec/types.js';

/** Session expiry interval meaning "never expires" (MQTT 5 §3.1.2.11.2). */
export const SESSION_NEVER_EXPIRES = 0xffffffff;

export interface StoredWill {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** Will delay interval, seconds (0 = publish at disconnect). */
  delayInterval: number;
}

export interface SessionRecord {
  clientId: string;
  protocolLevel: 3 | 4 | 5;
  /** Session expiry interval, seconds; SESSION_NEVER_EXPIRES (0xFFFFFFFF) = never. */
  expiryInterval: number;
  /** When the client disconnected, ms since epoch; null while it is connected. */
  disconnectedAt: number | null;
  will?: StoredWill;
  /**
   * Username of the session's last connection as authorization hooks saw it
   * (after authentication may have replaced it); absent for anonymous clients.
   * Restored sessions are checked with it (ACL read rules at delivery) until
   * their client reconnects.
   */
  username?: string;
  /** ms since epoch. */
  createdAt: number;
}

export interface StoredSubscription {
  /** Filter as subscribed; shared subscriptions keep the full `$share/group/filter`. */
  filter: string;
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

export interface StoredMessage {
  /** Assigned by the broker: unique per store, increasing; see Persistence.lastMessageId(). */
  id: number;
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties;
  /** Message expiry, ms since epoch. */
  expiresAt?: number;
  /** ms since epoch. */
  createdAt: number;
}

export type OutboundState = 'queued' | 'sent' | 'pubrel';

export interface OutboundEntry {
  /** Per-client order key; increasing in delivery order. */
  seq: number;
  messageId: number;
  /** Granted QoS (the message's QoS capped by the subscription). */
  qos: QoS;
  /** Set once the entry has been sent with a packet identifier. */
  packetId?: number;
  state: OutboundState;
  /** v5 subscription identifiers to deliver with. */
  subscriptionIds?: number[];
  /** RETAIN flag to deliver with (retain-as-published / retained on subscribe). */
  retain?: boolean;
}

export interface OutboundWithMessage {
  entry: OutboundEntry;
  message: StoredMessage;
}

export interface ClientSubscription {
  clientId: string;
  subscription: StoredSubscription;
}

/** One outbound entry of a client with its message (Persistence.loadAllOutbound). */
export interface ClientOutbound extends OutboundWithMessage {
  clientId: string;
}

/** One QoS 2 packet id awaiting PUBREL (Persistence.loadAllInbound). */
export interface ClientInbound {
  clientId: string;
  packetId: number;
}

export interface RetainedStats {
  count: number;
  /** Sum of retained payload lengths, bytes. */
  bytes: number;
}

export interface PurgeResult {
  /** Client ids of the sessions deleted because they expired. */
  sessions: string[];
  /** Expired deliveries dropped: queued outbound entries plus retained slots. */
  messages: number;
}
