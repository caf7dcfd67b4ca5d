/**
 * Framed packet -> typed Packet. `header` is the fixed header's first byte
 * and `body` exactly its remaining-length bytes (see framer.ts). Every
 * rejection is a TernError: ERR_MQTT_MALFORMED (0x81), ERR_MQTT_PROTOCOL
 * (0x82), or for CONNECT ERR_MQTT_UNSUPPORTED_PROTOCOL (0x84).
 *
 * Binary fields (payload, password, correlation data ...) are views into
 * `body`, not copies.
 */
import { PacketType, type ProtocolLevel } from './constants.js';
import type { Packet } from './types.js';
import { malformed } from './primitives.js';
import { decodeAck } from './packets/ack.js';
import { decodeAuth } from './packets/auth.js';
import { decodeConnack } from './packets/connack.js';
import { decodeConnect } from './packets/connect.js';
import { decodeDisconnect } from './packets/disconnect.js';
import { decodePingreq, decodePingresp } from './packets/ping.js';
import { decodePublish } from './packets/publish.js';
import { decodeSuback } from './packets/suback.js';
import { decodeSubscribe } from './packets/subscribe.js';
import { decodeUnsuback } from './packets/unsuback.js';
import { decodeUnsubscribe } from './packets/unsubscribe.js';

export { decodeConnect } from './packets/connect.js';

/**
 * Fixed-header flags each type must carry [MQTT-2.2.2-1]; anything else is a
 * Malformed Packet [MQTT-2.2.2-2]. PUBLISH (-1) has its own flags.
 */
const REQUIRED_FLAGS: readonly number[] = [-1, 0, 0, -1, 0, 0, 0b0010, 0, 0b0010, 0, 0b0010, 0, 0, 0, 0, 0];

const TYPE_NAMES: readonly string[] = [
  'reserved',
  'CONNECT',
  'CONNACK',
  'PUBLISH',
  'PUBACK',
  'PUBREC',
  'PUBREL',
  'PUBCOMP',
  'SUBSCRIBE',
  'SUBACK',
  'UNSUBSCRIBE',
  'UNSUBACK',
  'PINGREQ',
  'PINGRESP',
  'DISCONNECT',
  'AUTH',
];

/**
 * Decode one framed packet for a connection at protocol `level`. For CONNECT
 * the level is read from the packet and the argument is ignored.
 */
export function decodePacket(header: number, body: Buffer, level: ProtocolLevel): Packet {
  const type = header >> 4;
  if (type === PacketType.PUBLISH) return decodePublish(header, body, level);
  if (type === 0) throw malformed('reserved packet type 0');
  if (type === PacketType.AUTH && level !== 5) throw malformed('AUTH packet before MQTT 5.0');
  if ((header & 0x0f) !== REQUIRED_FLAGS[type]) {
    throw malformed(`invalid fixed header flags 0x${(header & 0x0f).toString(16)} for ${TYPE_NAMES[type]!} [MQTT-2.2.2-2]`);
  }
  switch (type) {
    case PacketType.CONNECT:
      return decodeConnect(body);
    case PacketType.CONNACK:
      return decodeConnack(body, level);
    case PacketType.PUBACK:
    case PacketType.PUBREC:
    case PacketType.PUBREL:
    case PacketType.PUBCOMP:
      return decodeAck(header, body, level);
    case PacketType.SUBSCRIBE:
      return decodeSubscribe(body, level);
    case PacketType.SUBACK:
      return decodeSuback(body, level);
    case PacketType.UNSUBSCRIBE:
      return decodeUnsubscribe(body, level);
    case PacketType.UNSUBACK:
      return decodeUnsuback(body, level);
    case PacketType.PINGREQ:
      return decodePingreq(body);
    case PacketType.PINGRESP:
      return decodePingresp(body);
    case PacketType.DISCONNECT:
      return decodeDisconnect(body, level);
    default:
      return decodeAuth(body);
  }
}
