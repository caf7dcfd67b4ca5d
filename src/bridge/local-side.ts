/**
 * The bridge's local side: where forwarded messages come from and where
 * remote messages are published. Two implementations:
 * - MqttLocalSide (local-mqtt.ts): an MQTT connection to a local broker
 *   (`tern bridge -c FILE`, or the library against any broker);
 * - BrokerLocalSide (local-broker.ts): a Tern Broker in the same process
 *   (`[[bridges]]` in the broker config).
 */
import type { Properties, QoS } from '../codec/types.js';

/** A forward rule's local subscription. */
export interface LocalSubscription {
  readonly filter: string;
  readonly qos: QoS;
}

/** What a LocalSide calls into (the bridge). */
export interface LocalSink {
  /**
   * A local message matching one of the subscriptions. `token` is non-zero
   * when the local broker waits for an acknowledgement: pass it with `epoch`
   * to `ack()` once the message is safe (committed or acknowledged remotely).
   * `payload` may be kept: implementations hand over a buffer they do not reuse.
   */
  onMessage(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined, token: number, epoch: number): void;
  /** The local side is usable (connected, subscribed). */
  onUp(): void;
  /** The local side went away; `err` says why. */
  onDown(err: Error | undefined): void;
  /** A problem the local side survives (e.g. a refused subscription). */
  onError(err: Error): void;
}

export interface LocalSide {
  /** A short name for logs and stats: `mqtt://host:port` or `in-process`. */
  readonly description: string;
  readonly connected: boolean;
  /** MQTT protocol level in use (5, or 4 after a fallback); 0 while unknown. */
  readonly protocolLevel: number;
  /** Begin delivering matching messages to `sink`; resolves once started (not necessarily connected). */
  start(sink: LocalSink, subscriptions: readonly LocalSubscription[]): Promise<void>;
  /** Acknowledge a message delivered with `token` on connection `epoch` (ignored for an older epoch). */
  ack(token: number, epoch: number): void;
  /** Publish a message from the remote; false when the local side is down (the caller counts the drop). */
  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): boolean;
  close(): Promise<void>;
}
