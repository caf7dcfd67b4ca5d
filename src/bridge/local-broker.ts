/**
 * The local side as a Tern Broker in the same process (`[[bridges]]` in the
 * broker config). Messages come from the broker's `published` event and go
 * in through `broker.publish()`, which does not raise `published`: the bridge
 * never sees (never echoes) its own messages, and retain flags are as published.
 *
 * Ack chain: the broker has already acknowledged its publisher when
 * `published` fires, so a message is safe once the bridge's group commit
 * (the same turn of the event loop) has run; a crash of the whole process
 * before that commit loses what it had not committed.
 */
import type { Broker } from '../broker/broker.js';
import type { Message } from '../broker/message.js';
import type { Properties, QoS } from '../codec/types.js';
import type { LocalSide, LocalSink, LocalSubscription } from './local-side.js';
import { topicMatches } from './topics.js';

export class BrokerLocalSide implements LocalSide {
  readonly description = 'in-process';
  readonly protocolLevel = 5;
  readonly #broker: Broker;
  #sink: LocalSink | null = null;
  #subs: readonly LocalSubscription[] = [];
  #closed = false;
  readonly #onPublished = (message: Message, clientId: string | undefined): void => this.#published(message, clientId);

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  get connected(): boolean {
    return !this.#closed;
  }

  start(sink: LocalSink, subscriptions: readonly LocalSubscription[]): Promise<void> {
    this.#sink = sink;
    this.#subs = subscriptions;
    this.#broker.on('published', this.#onPublished);
    sink.onUp();
    return Promise.resolve();
  }

  #published(message: Message, _clientId: string | undefined): void {
    const sink = this.#sink;
    if (sink === null || message.topic.startsWith('$')) return;
    const subs = this.#subs;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i]!;
      if (!topicMatches(s.filter, message.topic)) continue;
      message.compact(); // the payload may be a view into a socket chunk: keep only its bytes
      const qos = (message.qos < s.qos ? message.qos : s.qos) as QoS;
      sink.onMessage(message.topic, message.payload, qos, message.retain, message.properties, 0, 0);
      return;
    }
  }

  ack(_token: number, _epoch: number): void {
    // Nothing to acknowledge in-process.
  }

  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): boolean {
    if (this.#closed) return false;
    const opts: { topic: string; payload: Buffer; qos: QoS; retain: boolean; properties?: Properties } = { topic, payload, qos, retain };
    if (properties !== undefined) opts.properties = properties;
    this.#broker.publish(opts).catch(() => {
      // The broker closed under us: the message is lost like any publish to a stopped broker.
    });
    return true;
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#broker.off('published', this.#onPublished);
      this.#sink?.onDown(undefined);
    }
    return Promise.resolve();
  }
}
