/**
 * CONNACK [MQTT-3.2]: acknowledge flags (bit 0 session present, bits 7-1
 * reserved [MQTT-3.2.2-1]), a 3.1.1 return code or 5.0 reason code, and in
 * 5.0 the CONNACK properties.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { ConnackPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, malformed, varintLength } from '../primitives.js';

const MASK = propertyMask(PacketType.CONNACK);

export function decodeConnack(body: Buffer, level: ProtocolLevel): ConnackPacket {
  const r = new Reader(body, 0, body.length);
  const flags = r.u8('CONNACK flags');
  if ((flags & 0xfe) !== 0) throw malformed('CONNACK reserved flags are set [MQTT-3.2.2-1]');
  const packet: ConnackPacket = {
    type: 'connack',
    sessionPresent: (flags & 1) !== 0,
    reasonCode: r.u8('CONNACK reason code'),
  };
  if (level === 5) {
    const props = decodeProperties(r, MASK);
    if (props !== undefined) packet.properties = props;
  }
  r.done('CONNACK');
  return packet;
}

export function encodeConnack(p: ConnackPacket, level: ProtocolLevel): Buffer {
  const rc = p.reasonCode;
  if (!Number.isInteger(rc) || rc < 0 || rc > 0xff) throw invalidPacket(`CONNACK reason code ${rc}`);
  let remaining = 2;
  let propsLen = 0;
  if (level === 5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  const buf = allocPacket(PacketType.CONNACK << 4, remaining);
  let off = buf.length - remaining;
  buf[off++] = p.sessionPresent ? 1 : 0;
  buf[off++] = rc;
  if (level === 5) writeProperties(buf, off, p.properties, MASK, propsLen);
  return buf;
}
