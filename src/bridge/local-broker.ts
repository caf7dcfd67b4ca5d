/**
 * The local side as a Tern Broker in the same process (`[[bridges]]` in the
 * broker config). Messages come in as a durable consumer of the broker
 * (BrokerCore.addDurableConsumer: every message a client or the API
 * publishes, after routing) and go out through `broker.publish()`; a message
 * the bridge publishes itself is not taken back (never echoed), and retain
 * flags are as published.
 *
 * Ack chain: a QoS 1/2 message matching a forward rule (at a forward QoS of
 * 1 or 2) gets a token, and the consumer returns a promise that the broker's
 * PUBACK/PUBREC to the publisher waits on. ack(token) — called by the
 * pipeline once the message is committed to the cache, acknowledged by the
 * remote, or dropped and counted — resolves it. So a message the broker
 * acknowledged survives a crash of the whole process. Tokens still open
 * when the bridge closes are rejected: their publishers get no success
 * acknowledgement (v5: 0x83; 3.1.1: disconnected, so they resend).
 */
import type { Broker } from '../broker/broker.js';
import type { DurableConsumer } from '../broker/core.js';
import type { Message } from '../broker/message.js';
import type { Properties, QoS } from '../codec/types.js';
import { ternError } from '../errors.js';
import type { LocalSide, LocalSink, LocalSubscription } from './local-side.js';
import { topicMatches } from './topics.js';

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Tokens wrap below 2^31 and skip 0 (0 means "nothing to acknowledge"). */
const TOKEN_MAX = 0x7fffffff;

export class BrokerLocalSide implements LocalSide {
  readonly description = 'in-process';
  readonly protocolLevel = 5;
  readonly #broker: Broker;
  #sink: LocalSink | null = null;
  #subs: readonly LocalSubscription[] = [];
  #closed = false;
  /** True while this side publishes into the broker: its own messages are not taken back. */
  #publishing = false;
  #nextToken = 1;
  readonly #waiting = new Map<number, Waiter>();
  readonly #consumer: DurableConsumer = (message) => this.#consume(message);

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  get connected(): boolean {
    return !this.#closed;
  }

  /** Publishers' acknowledgements waiting for the bridge. */
  get waiting(): number {
    return this.#waiting.size;
  }

  start(sink: LocalSink, subscriptions: readonly LocalSubscription[]): Promise<void> {
    this.#sink = sink;
    this.#subs = subscriptions;
    this.#broker.core.addDurableConsumer(this.#consumer);
    sink.onUp();
    return Promise.resolve();
  }

  #consume(message: Message): Promise<void> | undefined {
    const sink = this.#sink;
    if (sink === null || this.#closed || this.#publishing || message.topic.startsWith('$')) return undefined;
    const subs = this.#subs;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i]!;
      if (!topicMatches(s.filter, message.topic)) continue;
      message.compact(); // the payload may be a view into a socket chunk: keep only its bytes
      const qos = (message.qos < s.qos ? message.qos : s.qos) as QoS;
      if (qos === 0) {
        sink.onMessage(message.topic, message.payload, qos, message.retain, message.properties, 0, 0);
        return undefined;
      }
      const token = this.#nextToken;
      this.#nextToken = token >= TOKEN_MAX ? 1 : token + 1;
      const held = new Promise<void>((resolve, reject) => {
        this.#waiting.set(token, { resolve, reject });
      });
      // The pipeline may acknowledge at once (a message it drops): the waiter is registered first.
      sink.onMessage(message.topic, message.payload, qos, message.retain, message.properties, token, 0);
      return held;
    }
    return undefined;
  }

  ack(token: number, _epoch: number): void {
    const w = this.#waiting.get(token);
    if (w === undefined) return;
    this.#waiting.delete(token);
    w.resolve();
  }

  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): boolean {
    if (this.#closed) return false;
    const opts: { topic: string; payload: Buffer; qos: QoS; retain: boolean; properties?: Properties } = { topic, payload, qos, retain };
    if (properties !== undefined) opts.properties = properties;
    // broker.publish routes (and calls the consumers) before its first await.
    this.#publishing = true;
    try {
      this.#broker.publish(opts).catch(() => {
        // The broker closed under us: the message is lost like any publish to a stopped broker.
      });
    } finally {
      this.#publishing = false;
    }
    return true;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#broker.core.removeDurableConsumer(this.#consumer);
      if (this.#waiting.size > 0) {
        const err = ternError('ERR_STORAGE_CLOSED', 'the bridge closed before caching the message');
        for (const w of this.#waiting.values()) w.reject(err);
        this.#waiting.clear();
      }
      this.#sink?.onDown(undefined);
    }
    return Promise.resolve();
  }
}
