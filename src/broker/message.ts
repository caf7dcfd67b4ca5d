/**
 * A routed application message and its encode-once cache.
 *
 * Fan-out serialises a PUBLISH once per distinct (protocol level, QoS,
 * retain flag) and shares the bytes between subscribers; only the packet
 * identifier (and DUP on redelivery) differs between copies, stamped by
 * `stampPacketId`. Deliveries that need per-subscriber properties (v5
 * subscription identifiers, topic aliases, a shortened expiry) encode their own.
 */
import type { ProtocolLevel } from '../codec/constants.js';
import { encodePublishShared, type EncodedPublish } from '../codec/publish.js';
import type { Properties, PublishPacket, QoS } from '../codec/types.js';

export interface MessageInit {
  topic: string;
  payload: Buffer;
  qos: QoS;
  retain: boolean;
  properties?: Properties | undefined;
  /** Absolute expiry (ms since epoch) from a v5 message expiry interval. */
  expiresAt?: number | undefined;
  /** Client id of the publisher (for no-local); undefined for broker-originated messages. */
  origin?: string | undefined;
}

export class Message {
  readonly topic: string;
  /** May be a view into a larger receive buffer until compact() is called. */
  payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties: Properties | undefined;
  readonly expiresAt: number | undefined;
  readonly origin: string | undefined;
  /** Store id once persisted (0 = not persisted). */
  id = 0;
  // Encoded forms, index = level(0:v3/4,1:v5) * 6 + qos * 2 + retain.
  #encoded: Array<EncodedPublish | undefined> | null = null;

  constructor(init: MessageInit) {
    this.topic = init.topic;
    this.payload = init.payload;
    this.qos = init.qos;
    this.retain = init.retain;
    this.properties = init.properties;
    this.expiresAt = init.expiresAt;
    this.origin = init.origin;
  }

  /**
   * Called when the message is kept beyond the current tick (queued, in
   * flight, retained): a payload that is a small view into a large socket
   * chunk would keep the whole chunk alive, so copy it out once. Immediate
   * deliveries never pay for the copy.
   */
  compact(): void {
    const p = this.payload;
    if (p.buffer.byteLength > p.length + 1024) this.payload = Buffer.from(p);
  }

  isExpired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt;
  }

  /** Bytes of this message as a PUBLISH for `level` at `qos` with `retain`, encoded once and shared. */
  encoded(level: ProtocolLevel, qos: QoS, retain: boolean): EncodedPublish {
    const index = (level === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
    const cache = (this.#encoded ??= new Array<EncodedPublish | undefined>(12));
    let enc = cache[index];
    if (enc === undefined) {
      enc = encodePublishShared(this.toPacket(qos, retain, level === 5 ? this.#outboundProperties() : undefined), level);
      cache[index] = enc;
    }
    return enc;
  }

  /** A PUBLISH packet for this message (packet id left for the caller). */
  toPacket(qos: QoS, retain: boolean, properties: Properties | undefined): PublishPacket {
    const packet: PublishPacket = { type: 'publish', topic: this.topic, payload: this.payload, qos, retain, dup: false };
    if (properties !== undefined) packet.properties = properties;
    return packet;
  }

  /**
   * Properties forwarded to v5 subscribers. The topic alias is per connection
   * and never forwarded [MQTT-3.3.2-?]; subscription identifiers are added per
   * subscriber; the expiry interval is rewritten to the time left [MQTT-3.3.2-6].
   */
  #outboundProperties(): Properties | undefined {
    const p = this.properties;
    if (p === undefined) return undefined;
    const out: Properties = { ...p };
    delete out.topicAlias;
    delete out.subscriptionIdentifiers;
    if (this.expiresAt !== undefined) {
      out.messageExpiryInterval = Math.max(0, Math.ceil((this.expiresAt - Date.now()) / 1000));
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }

  /** Properties for one v5 delivery that needs per-subscriber fields. */
  propertiesFor(subscriptionIds: readonly number[] | undefined): Properties | undefined {
    const base = this.#outboundProperties();
    if (subscriptionIds === undefined || subscriptionIds.length === 0) return base;
    return { ...base, subscriptionIdentifiers: [...subscriptionIds] };
  }
}
