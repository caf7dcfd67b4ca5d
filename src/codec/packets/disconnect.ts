/**
 * DISCONNECT [MQTT-3.14]: empty in 3.1.1. In 5.0 a reason code and properties
 * follow; remaining length 0 means 0x00 Normal disconnection and length 1
 * means no properties [MQTT 5.0 §3.14.2.1]. Encoding picks the shortest form.
 * Decoding for level 5 always sets `reasonCode`.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { DisconnectPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, malformed, varintLength } from '../primitives.js';

const MASK = propertyMask(PacketType.DISCONNECT);

export function decodeDisconnect(body: Buffer, level: ProtocolLevel): DisconnectPacket {
  if (level !== 5) {
    if (body.length !== 0) throw malformed('DISCONNECT with a body in MQTT 3.1.1');
    return { type: 'disconnect' };
  }
  const r = new Reader(body, 0, body.length);
  const packet: DisconnectPacket = { type: 'disconnect', reasonCode: r.remaining > 0 ? r.u8('reason code') : 0 };
  if (r.remaining > 0) {
    const props = decodeProperties(r, MASK);
    if (props !== undefined) packet.properties = props;
  }
  r.done('DISCONNECT');
  return packet;
}

export function encodeDisconnect(p: DisconnectPacket, level: ProtocolLevel): Buffer {
  if (level !== 5) return Buffer.from([PacketType.DISCONNECT << 4, 0]);
  const rc = p.reasonCode ?? 0;
  if (!Number.isInteger(rc) || rc < 0 || rc > 0xff) throw invalidPacket(`DISCONNECT reason code ${rc}`);
  const propsLen = propertiesLength(p.properties, MASK);
  const remaining = propsLen > 0 ? 1 + varintLength(propsLen) + propsLen : rc !== 0 ? 1 : 0;
  const buf = allocPacket(PacketType.DISCONNECT << 4, remaining);
  if (remaining > 0) {
    const off = buf.length - remaining;
    buf[off] = rc;
    if (propsLen > 0) writeProperties(buf, off + 1, p.properties, MASK, propsLen);
  }
  return buf;
}
