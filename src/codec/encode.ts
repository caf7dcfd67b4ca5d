/**
 * Packet -> wire bytes for a connection at protocol `level`. Levels 3 and 4
 * encode identically (CONNECT takes its protocol name and level from the
 * packet); for them v5-only fields (properties, most reason codes) are left
 * out. The result is one freshly allocated Buffer holding the whole packet.
 *
 * An object that cannot be encoded (QoS 3, missing packet identifier, string
 * over 65535 bytes, AUTH below 5.0 ...) throws ERR_CODEC_INVALID_PACKET; a
 * packet over the protocol's size limit throws ERR_MQTT_PACKET_TOO_LARGE.
 * The size of the result is `buffer.length`, to compare with the peer's
 * Maximum Packet Size before sending.
 */
import type { ProtocolLevel } from './constants.js';
import type { Packet } from './types.js';
import { invalidPacket } from './primitives.js';
import { encodeAck } from './packets/ack.js';
import { encodeAuth } from './packets/auth.js';
import { encodeConnack } from './packets/connack.js';
import { encodeConnect } from './packets/connect.js';
import { encodeDisconnect } from './packets/disconnect.js';
import { encodePingreq, encodePingresp } from './packets/ping.js';
import { encodePublish } from './packets/publish.js';
import { encodeSuback } from './packets/suback.js';
import { encodeSubscribe } from './packets/subscribe.js';
import { encodeUnsuback } from './packets/unsuback.js';
import { encodeUnsubscribe } from './packets/unsubscribe.js';

export function encodePacket(packet: Packet, level: ProtocolLevel): Buffer {
  switch (packet.type) {
    case 'publish':
      return encodePublish(packet, level);
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return encodeAck(packet, level);
    case 'connect':
      return encodeConnect(packet);
    case 'connack':
      return encodeConnack(packet, level);
    case 'subscribe':
      return encodeSubscribe(packet, level);
    case 'suback':
      return encodeSuback(packet, level);
    case 'unsubscribe':
      return encodeUnsubscribe(packet, level);
    case 'unsuback':
      return encodeUnsuback(packet, level);
    case 'pingreq':
      return encodePingreq();
    case 'pingresp':
      return encodePingresp();
    case 'disconnect':
      return encodeDisconnect(packet, level);
    case 'auth':
      return encodeAuth(packet, level);
    default:
      throw invalidPacket(`unknown packet type ${String((packet as { type: unknown }).type)}`);
  }
}
