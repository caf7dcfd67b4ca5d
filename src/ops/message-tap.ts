/**
 * In-process taps on the broker's message flow, for the live message view
 * (SSE) and the message-logging sinks. Consumers register topic filters; the
 * filters live in a TopicTrie, so one published message costs one trie match
 * however many consumers there are. The broker's `published` listener is
 * attached only while at least one consumer exists: with no tap, the publish
 * path pays nothing.
 */
import type { Broker } from '../broker/broker.js';
import type { Message } from '../broker/message.js';
import { isValidTopicFilter, parseSharedFilter } from '../broker/topic.js';
import { TopicTrie, type MatchSink, type SharedGroup } from '../broker/topic-trie.js';

export interface MessageConsumer {
  onMessage(message: Message, clientId: string | undefined): void;
}

interface Entry {
  readonly consumer: MessageConsumer;
  /** Last publish this consumer saw, so overlapping filters deliver once. */
  epoch: number;
}

export class MessageTap implements MatchSink<Entry> {
  readonly #broker: Broker;
  readonly #trie = new TopicTrie<Entry>();
  readonly #listener: (message: Message, clientId: string | undefined) => void;
  #consumers = 0;
  #nextId = 0;
  #epoch = 0;
  #message: Message | null = null;
  #clientId: string | undefined = undefined;

  constructor(broker: Broker) {
    this.#broker = broker;
    this.#listener = (message, clientId) => this.#onPublished(message, clientId);
  }

  /** Is `filter` a filter the tap accepts (valid, not `$share/`)? */
  isValidFilter(filter: string): boolean {
    return parseSharedFilter(filter) === undefined && isValidTopicFilter(filter, this.#broker.config.limits.maxTopicLevels);
  }

  /** Feed `consumer` the messages matching any of `filters`; returns the function that stops it. */
  add(filters: readonly string[], consumer: MessageConsumer): () => void {
    for (const f of filters) if (!this.isValidFilter(f)) throw new TypeError(`invalid topic filter ${JSON.stringify(f)}`);
    const owner = `c${++this.#nextId}`;
    const entry: Entry = { consumer, epoch: 0 };
    const unique = [...new Set(filters)];
    for (const f of unique) this.#trie.add(f, owner, entry);
    if (this.#consumers++ === 0) this.#broker.on('published', this.#listener);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      for (const f of unique) this.#trie.remove(f, owner);
      if (--this.#consumers === 0) this.#broker.off('published', this.#listener);
    };
  }

  get consumerCount(): number {
    return this.#consumers;
  }

  close(): void {
    if (this.#consumers > 0) this.#broker.off('published', this.#listener);
    this.#consumers = 0;
  }

  #onPublished(message: Message, clientId: string | undefined): void {
    this.#epoch = (this.#epoch + 1) | 0;
    this.#message = message;
    this.#clientId = clientId;
    this.#trie.match(message.topic, this);
    this.#message = null;
  }

  onEntry(entry: Entry): void {
    if (entry.epoch === this.#epoch) return;
    entry.epoch = this.#epoch;
    try {
      entry.consumer.onMessage(this.#message!, this.#clientId);
    } catch (err) {
      this.#broker.log.warn({ err }, 'message tap consumer failed');
    }
  }

  onGroup(_group: SharedGroup<Entry>): void {
    // Shared filters are refused in add().
  }
}
