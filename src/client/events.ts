/** The typed events of MqttClient (see client.ts for when each fires). */
import type { ConnackPacket, DisconnectPacket, PublishPacket } from '../codec/types.js';

export type ClientEvents = {
  /** CONNACK accepted, after every (re)connect; in-flight operations have been resent. */
  connect: [connack: ConnackPacket];
  /** The connection closed; `err` says why unless it was end()/destroy(). */
  close: [err: Error | undefined];
  /**
   * A connection failed (refused, timed out, protocol error, lost). Emitted
   * only when someone listens, so a reconnecting client never crashes a
   * process that does not care; `close` carries the same error.
   */
  error: [err: Error];
  /** An inbound application message. QoS 2 duplicates are not re-emitted. */
  message: [packet: PublishPacket];
  /** A reconnect attempt is scheduled after `delayMs`. */
  reconnect: [attempt: number, delayMs: number];
  /** The server sent DISCONNECT (MQTT 5). `close` follows. */
  disconnect: [packet: DisconnectPacket];
  /** A PINGRESP answered our PINGREQ after `rttMs`. */
  pingresp: [rttMs: number];
  /** The socket's write buffer drained (see `bufferedAmount`). */
  drain: [];
};
