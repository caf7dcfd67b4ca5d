/**
 * A client session [MQTT-4.1]: subscriptions, the outbound QoS 1/2 window,
 * the queue behind it, and inbound QoS 2 packet ids awaiting PUBREL. A session
 * outlives its connection when it is persistent (clean session 0 / v5 session
 * expiry > 0).
 *
 * Invariants:
 * - `inflight` holds only QoS 1/2 messages that were sent (state SENT or
 *   PUBREL), keyed by packet id, in send order (Map insertion order).
 * - `queue` holds messages waiting for a free window slot, a writable socket
 *   or the client's return, in arrival order; it never exceeds maxQueued.
 * - While `queue` is non-empty, new deliveries join its tail, so per-topic
 *   order holds [MQTT-4.6.0-6].
 */
import type { QoS, Will } from '../codec/types.js';
import { Deque } from './deque.js';
import type { HookClient } from '../hooks/types.js';
import type { Message } from './message.js';
import type { SharedGroup } from './topic-trie.js';

export const OutState = { QUEUED: 0, SENT: 1, PUBREL: 2 } as const;
export type OutStateValue = (typeof OutState)[keyof typeof OutState];

/** One message on its way to one session. */
export interface Outbound {
  readonly message: Message;
  /** Delivery QoS: the lower of the message's and the subscription's [MQTT-3.8.4-6]. */
  readonly qos: QoS;
  /** Retain flag to deliver with. */
  readonly retain: boolean;
  /** v5 subscription identifiers of the matching subscriptions. */
  readonly subscriptionIds: number[] | undefined;
  packetId: number;
  state: OutStateValue;
  /** Order key in the store for persistent sessions (0 = not stored). */
  seq: number;
  /** A write of it went to the store, or it came from there (see Durable.putOutbound). */
  written?: boolean;
  /** The shared subscription group it was picked for, if any (handed on if this member leaves). */
  group?: SharedGroup<SubscriptionEntry> | undefined;
}

export interface SubscriptionEntry {
  readonly session: Session;
  /** The filter as subscribed (with `$share/group/` when shared). */
  readonly filter: string;
  readonly qos: QoS;
  readonly noLocal: boolean;
  readonly retainAsPublished: boolean;
  readonly retainHandling: 0 | 1 | 2;
  readonly subscriptionId: number | undefined;
}

/** What a session needs from its live connection. */
export interface SessionLink {
  /** Effective outbound window: min(broker max in-flight, client receive maximum). */
  readonly sendWindow: number;
  /** True while the socket buffer is over its high-water mark. */
  readonly congested: boolean;
  /** Send one PUBLISH; returns false if it could not be sent (e.g. too large for the client) and was dropped. */
  sendPublish(out: Outbound, dup: boolean): boolean;
  sendPubrel(packetId: number): void;
}

/** What a session needs from the broker. */
export interface SessionHost {
  readonly maxQueued: number;
  onDrop(session: Session, out: Outbound, reason: DropReason): void;
  /** A stored (seq > 0) outbound message was created or changed state. */
  storeOutbound(session: Session, out: Outbound): void;
  /** A stored outbound message is done (acknowledged, dropped). */
  forgetOutbound(session: Session, out: Outbound): void;
}

export type DropReason = 'queue_full' | 'offline_qos0' | 'expired' | 'too_large';

export class Session {
  readonly clientId: string;
  readonly host: SessionHost;
  link: SessionLink | null = null;
  readonly subscriptions = new Map<string, SubscriptionEntry>();
  readonly inflight = new Map<number, Outbound>();
  readonly queue = new Deque<Outbound>();
  readonly inboundQos2 = new Set<number>();
  /** Seconds the session lives after its connection ends; 0xFFFFFFFF = forever. */
  expiryInterval = 0;
  will: Will | undefined = undefined;
  /** A will waiting out its v5 will delay interval [MQTT-3.1.3-9]. */
  pendingWill: Will | undefined = undefined;
  willTimer: NodeJS.Timeout | undefined = undefined;
  /** Set when the session ended (expired, cleaned, taken over with clean start). */
  ended = false;
  /** The store holds a record of this session. */
  stored = false;
  /**
   * A cluster take-over in progress: the subscriptions are routed here
   * already and QoS 1/2 messages queue in memory, in front of which the
   * stored state is put once the previous node let go of it.
   */
  preparing = false;
  /** Who the session belongs to, as authorization hooks see it (its last connection). */
  client: HookClient | undefined = undefined;
  /** Protocol level of the last connection (stored with the session). */
  protocolLevel: 3 | 4 | 5 = 4;
  /** When the last connection ended (ms epoch); null while connected. */
  disconnectedAt: number | null = null;
  expiryTimer: NodeJS.Timeout | undefined = undefined;
  /** Router scratch: which publish last matched this session, and where its slot is. */
  matchEpoch = 0;
  matchSlot = 0;
  /** Next store order key for outbound messages. */
  nextSeq = 1;
  #nextPacketId = 1;

  constructor(clientId: string, host: SessionHost) {
    this.clientId = clientId;
    this.host = host;
  }

  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Hand a message to this session: send now, or queue behind earlier ones. */
  deliver(
    message: Message,
    qos: QoS,
    retain: boolean,
    subscriptionIds: number[] | undefined,
    group?: SharedGroup<SubscriptionEntry>,
  ): void {
    const link = this.link;
    if (link === null && qos === 0) {
      // Like Mosquitto (queue_qos0_messages false): QoS 0 is not queued for offline clients.
      return;
    }
    const stored = qos > 0 && this.expiryInterval > 0;
    const out: Outbound = { message, qos, retain, subscriptionIds, packetId: 0, state: OutState.QUEUED, seq: stored ? this.nextSeq++ : 0, written: false, group };
    if (link !== null && this.queue.length === 0 && !link.congested) {
      if (qos === 0) {
        link.sendPublish(out, false);
        return;
      }
      if (this.inflight.size < link.sendWindow) {
        this.#send(link, out);
        return;
      }
    }
    this.#enqueue(out);
    if (out.seq > 0) this.host.storeOutbound(this, out);
  }

  /** Move queued messages out while the window and the socket allow. */
  pump(): void {
    const link = this.link;
    if (link === null) return;
    const now = Date.now();
    while (this.queue.length > 0 && !link.congested) {
      const head = this.queue.peek()!;
      if (head.qos > 0 && this.inflight.size >= link.sendWindow) return;
      this.queue.shift();
      if (head.message.isExpired(now)) {
        this.#drop(head, 'expired');
        continue;
      }
      if (head.qos === 0) link.sendPublish(head, false);
      else this.#send(link, head);
    }
  }

  /** PUBACK (QoS 1) or PUBCOMP (QoS 2) received: the message is done. */
  complete(packetId: number, expected: OutStateValue): boolean {
    const out = this.inflight.get(packetId);
    if (out === undefined || out.state !== expected) return false;
    this.inflight.delete(packetId);
    if (out.seq > 0) this.host.forgetOutbound(this, out);
    this.pump();
    return true;
  }

  /** PUBREC received: discard the message, remember PUBREL [MQTT-4.3.3-?]. */
  received(packetId: number): boolean {
    const out = this.inflight.get(packetId);
    if (out === undefined || out.qos !== 2) return false;
    if (out.state === OutState.SENT) {
      out.state = OutState.PUBREL;
      if (out.seq > 0) this.host.storeOutbound(this, out);
    }
    return true;
  }

  /**
   * Attach a new connection: resend unacknowledged PUBLISH with DUP and
   * PUBREL as they were [MQTT-4.4.0-1], then pump the queue.
   */
  attach(link: SessionLink): void {
    this.link = link;
    for (const out of this.inflight.values()) {
      if (out.state === OutState.PUBREL) link.sendPubrel(out.packetId);
      else link.sendPublish(out, true);
    }
    this.pump();
  }

  detach(): void {
    this.link = null;
  }

  /** QoS 1/2 messages not yet completed that came through a shared subscription. */
  unfinishedShared(): Outbound[] {
    const out: Outbound[] = [];
    // A QoS 2 message already sent stays with this session [MQTT-4.8.2-5]: handing it on could duplicate it.
    for (const o of this.inflight.values()) if (o.group !== undefined && o.state === OutState.SENT && o.qos === 1) out.push(o);
    for (const o of this.queue) if (o.group !== undefined && o.qos > 0) out.push(o);
    return out;
  }

  /** Drop all state (clean start / session end). */
  reset(): void {
    this.subscriptions.clear();
    this.inflight.clear();
    this.queue.clear();
    this.inboundQos2.clear();
    this.will = undefined;
    this.pendingWill = undefined;
    clearTimeout(this.willTimer);
    this.willTimer = undefined;
  }

  #send(link: SessionLink, out: Outbound): void {
    out.message.compact();
    out.packetId = this.#allocatePacketId();
    out.state = OutState.SENT;
    this.inflight.set(out.packetId, out);
    if (!link.sendPublish(out, false)) {
      this.inflight.delete(out.packetId);
      if (out.seq > 0) this.host.forgetOutbound(this, out);
      return;
    }
    if (out.seq > 0) this.host.storeOutbound(this, out);
  }

  #drop(out: Outbound, reason: DropReason): void {
    this.host.onDrop(this, out, reason);
    if (out.seq > 0) this.host.forgetOutbound(this, out);
  }

  /** Put back a message restored from the store (at start-up). */
  restore(out: Outbound): void {
    if (out.seq >= this.nextSeq) this.nextSeq = out.seq + 1;
    if (out.state === OutState.QUEUED) this.queue.push(out);
    else this.inflight.set(out.packetId, out);
  }

  #enqueue(out: Outbound): void {
    const max = this.host.maxQueued;
    if (max === 0) {
      this.host.onDrop(this, out, 'queue_full');
      out.seq = 0;
      return;
    }
    if (this.queue.length >= max) {
      // The oldest queued message makes room for the newest.
      const oldest = this.queue.shift()!;
      this.#drop(oldest, 'queue_full');
    }
    out.message.compact();
    this.queue.push(out);
  }

  /** Next packet id not in use by an in-flight message [MQTT-2.3.1-2]. */
  #allocatePacketId(): number {
    let id = this.#nextPacketId;
    while (this.inflight.has(id)) id = id === 65535 ? 1 : id + 1;
    this.#nextPacketId = id === 65535 ? 1 : id + 1;
    return id;
  }
}
