/**
 * Outbound operations that need an acknowledgement: QoS 1/2 PUBLISH,
 * SUBSCRIBE and UNSUBSCRIBE. Owns the packet identifier space, the in-flight
 * window for PUBLISH (the server's Receive Maximum [MQTT-4.9.0-2]) and the
 * FIFO of operations waiting for it (or for a connection).
 *
 * Invariants:
 * - An operation holds a packet id iff it is in `#byId`; ids are unique among
 *   unacknowledged operations [MQTT-2.3.1-2].
 * - `#byId` iterates in send order, which is the resend order on reconnect
 *   [MQTT-4.6.0-1].
 * - `publishing` counts QoS > 0 PUBLISH in `#byId`; only they use the window.
 */
import type { PublishPacket, SubscribePacket, UnsubscribePacket } from '../codec/types.js';
import { Fifo } from './fifo.js';

/** Where an operation is in its flow. */
export const OpState = {
  /** Waiting in the queue, no packet id yet. */
  QUEUED: 0,
  /** Sent; waiting for PUBACK / PUBREC / SUBACK / UNSUBACK. */
  SENT: 1,
  /** QoS 2 only: PUBREC received, PUBREL sent; waiting for PUBCOMP. */
  RELEASED: 2,
} as const;
export type OpState = (typeof OpState)[keyof typeof OpState];

export type PublishCallback = (err: Error | null) => void;
export type AckCallback = (err: Error | null, reasonCodes: number[] | null) => void;

/** One outbound request. A class with fixed fields so V8 keeps one shape. */
export class PendingOp {
  readonly packet: PublishPacket | SubscribePacket | UnsubscribePacket;
  state: OpState = OpState.QUEUED;
  /** Encoded PUBLISH, kept for resending (QoS > 0). */
  bytes: Buffer | null = null;
  /** Date.now() when last sent; only kept when an ack timeout is set. */
  sentAt = 0;
  readonly callback: AckCallback;

  constructor(packet: PublishPacket | SubscribePacket | UnsubscribePacket, callback: AckCallback) {
    this.packet = packet;
    this.callback = callback;
  }

  /** A QoS > 0 PUBLISH (uses the in-flight window). */
  get windowed(): boolean {
    const p = this.packet;
    return p.type === 'publish' && p.qos > 0;
  }
}

export class Inflight {
  readonly #byId = new Map<number, PendingOp>();
  readonly #queue = new Fifo<PendingOp>();
  #nextId = 1;
  #publishing = 0;
  /** Window for QoS > 0 PUBLISH: min(own maxInflight, server Receive Maximum). */
  limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** Unacknowledged QoS > 0 PUBLISH. */
  get publishing(): number {
    return this.#publishing;
  }

  /** Operations holding a packet id. */
  get size(): number {
    return this.#byId.size;
  }

  get queued(): number {
    return this.#queue.length;
  }

  get hasRoom(): boolean {
    return this.#publishing < this.limit;
  }

  get(packetId: number): PendingOp | undefined {
    return this.#byId.get(packetId);
  }

  /** Oldest operation holding a packet id. */
  oldest(): PendingOp | undefined {
    for (const op of this.#byId.values()) return op;
    return undefined;
  }

  /** All operations holding a packet id, in send order. */
  sent(): PendingOp[] {
    return [...this.#byId.values()];
  }

  /**
   * Give `op` a free packet id and track it. The caller checks `hasRoom` for
   * windowed ops. Never fails: at most 65535 ops can hold ids and the window
   * is at most 65535, but SUBSCRIBE could exhaust the space, so it spins at
   * most once around it.
   */
  assign(op: PendingOp): number {
    const byId = this.#byId;
    if (byId.size >= 0xffff) throw new RangeError('all 65535 packet identifiers are in use');
    let id = this.#nextId;
    while (byId.has(id)) id = id === 0xffff ? 1 : id + 1;
    this.#nextId = id === 0xffff ? 1 : id + 1;
    op.packet.packetId = id;
    byId.set(id, op);
    if (op.windowed) this.#publishing++;
    return id;
  }

  /** Stop tracking `op` (acknowledged or failed); frees its id and window slot. */
  release(op: PendingOp): void {
    const id = op.packet.packetId;
    if (id === undefined || this.#byId.get(id) !== op) return;
    this.#byId.delete(id);
    if (op.windowed) this.#publishing--;
  }

  enqueue(op: PendingOp): void {
    this.#queue.push(op);
  }

  peekQueued(): PendingOp | undefined {
    return this.#queue.peek();
  }

  shiftQueued(): PendingOp | undefined {
    return this.#queue.shift();
  }

  /** Remove everything (for failing all operations on close). */
  clear(): PendingOp[] {
    const all = [...this.#byId.values(), ...this.#queue.drain()];
    this.#byId.clear();
    this.#publishing = 0;
    return all;
  }
}
