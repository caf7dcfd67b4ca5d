/**
 * One bench publisher: keeps its pipe full (rate 0) or sends what a pacing
 * tick asks for, never beyond bounded windows:
 * - QoS 0: the socket's write buffer (waits for 'drain' past BUFFER_LIMIT);
 * - QoS 1/2: `window` unacknowledged messages (and the server's Receive Maximum);
 * - with subscribers in this process: `window` messages not yet delivered
 *   (x deliveries per message), so the broker's queues stay short and the
 *   measured latency is the broker's, not a backlog's.
 * Per message: one stamp and one publishWithCallback with a shared callback.
 */
import type { MqttClient } from '../client/client.js';
import type { PublishCallback } from '../client/inflight.js';
import type { QoS } from '../codec/types.js';
import { makePayload, nowMs, stamp, STAMP_BYTES } from './stamp.js';
import type { Stats } from './stats.js';

/** Bytes a QoS 0 publisher lets queue in its socket before waiting for 'drain'. */
export const BUFFER_LIMIT = 64 * 1024;
/** Deliveries missing for this long are written off (QoS 0 loss), so the window cannot stall. */
export const STALL_MS = 1000;

export class Publisher {
  readonly client: MqttClient;
  readonly topic: string;
  /** Messages handed to the client. */
  issued = 0;
  /** QoS 0: written; QoS 1/2: acknowledged. */
  sent = 0;
  /** QoS 1/2 messages not yet acknowledged. */
  outstanding = 0;
  /** Deliveries to in-process subscribers not yet seen. */
  pending = 0;
  readonly #index: number;
  readonly #qos: QoS;
  readonly #size: number;
  readonly #window: number;
  /** Deliveries expected per message (0 = not tracked). */
  readonly #deliveries: number;
  /** QoS 0 payload, reused: the client copies it into the packet at once. */
  readonly #payload: Buffer;
  #stopped = false;
  #unpaced = false;
  #delivered = 0;
  #deliveredAtCheck = 0;
  #lastProgress = 0;
  readonly #onSent: PublishCallback;
  readonly #onAck: PublishCallback;
  #refillScheduled = false;
  readonly #refill = (): void => {
    this.#refillScheduled = false;
    if (this.#unpaced) this.#fill();
  };
  readonly #onDrain = (): void => {
    if (this.#unpaced) this.#fill();
  };

  constructor(
    client: MqttClient,
    topic: string,
    index: number,
    opts: { qos: QoS; size: number; window: number; deliveries: number },
    stats: Stats,
  ) {
    this.client = client;
    this.topic = topic;
    this.#index = index;
    this.#qos = opts.qos;
    this.#size = opts.size;
    this.#window = Math.max(1, opts.window);
    // Flow control by delivery needs the publisher index in the payload.
    this.#deliveries = opts.size >= STAMP_BYTES ? opts.deliveries : 0;
    this.#payload = makePayload(opts.size, index);
    this.#onSent = (err) => {
      if (err === null) {
        this.sent++;
        stats.sent++;
      } else {
        stats.error(err);
      }
    };
    this.#onAck = (err) => {
      this.outstanding--;
      if (err === null) {
        this.sent++;
        stats.sent++;
      } else if (!this.#stopped) {
        stats.error(err);
      }
      this.#scheduleRefill();
    };
  }

  /** Rate 0: send whenever the windows have room, until stop(). */
  startUnpaced(): void {
    this.#unpaced = true;
    this.client.on('drain', this.#onDrain);
    this.#fill();
  }

  /** Paced: send until `issued` reaches `target`, as far as the windows allow. */
  sendUpTo(target: number): void {
    while (this.issued < target && !this.#stopped && this.#canSend()) this.#sendOne();
  }

  /** An in-process subscriber received one of our messages. */
  delivered(): void {
    this.#delivered++;
    if (this.pending > 0) this.pending--;
    this.#scheduleRefill();
  }

  /**
   * Refill once per event-loop turn, after every ack and delivery read in it:
   * the refill becomes one batch (one writev), not one write per ack.
   */
  #scheduleRefill(): void {
    if (this.#unpaced && !this.#refillScheduled) {
      this.#refillScheduled = true;
      setImmediate(this.#refill);
    }
  }

  /** Called periodically: write off deliveries that stopped coming (lost QoS 0). */
  checkStall(now: number): void {
    if (this.#delivered !== this.#deliveredAtCheck || this.pending === 0) {
      this.#deliveredAtCheck = this.#delivered;
      this.#lastProgress = now;
      return;
    }
    if (now - this.#lastProgress >= STALL_MS) {
      this.pending = 0;
      this.#lastProgress = now;
      if (this.#unpaced) this.#fill();
    }
  }

  stop(): void {
    this.#stopped = true;
    this.#unpaced = false;
    this.client.off('drain', this.#onDrain);
  }

  #fill(): void {
    while (!this.#stopped && this.#canSend()) this.#sendOne();
  }

  #canSend(): boolean {
    const client = this.client;
    if (!client.connected) return false;
    if (this.#deliveries > 0 && this.pending >= this.#window * this.#deliveries) return false;
    if (this.#qos === 0) return client.bufferedAmount < BUFFER_LIMIT;
    return this.outstanding < this.#window && this.outstanding < client.inflightLimit;
  }

  #sendOne(): void {
    this.issued++;
    this.pending += this.#deliveries;
    if (this.#qos === 0) {
      const payload = this.#payload;
      stamp(payload, nowMs());
      this.client.publishWithCallback(this.topic, payload, 0, false, undefined, this.#onSent);
      return;
    }
    // QoS 1/2 keeps the packet until acknowledged: a fresh payload each time.
    const payload = makePayload(this.#size, this.#index);
    stamp(payload, nowMs());
    this.outstanding++;
    this.client.publishWithCallback(this.topic, payload, this.#qos, false, undefined, this.#onAck);
  }
}
