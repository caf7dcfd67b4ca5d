/**
 * SUBACK [MQTT-3.9]: packet identifier, 5.0 properties, one return/reason
 * code per topic filter. 3.1.1 return codes are 0x00, 0x01, 0x02 and 0x80
 * [MQTT-3.9.3-2]; when encoding for 3.1.1 any failure code (>= 0x80) is sent
 * as 0x80, so the broker may hand in 5.0 reason codes for either level.
 */
import { PacketType, SUBACK_FAILURE_V4, type ProtocolLevel } from '../constants.js';
import type { SubackPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, protocolError, varintLength, writeU16 } from '../primitives.js';

const MASK = propertyMask(PacketType.SUBACK);

export function decodeSuback(body: Buffer, level: ProtocolLevel): SubackPacket {
  const r = new Reader(body, 0, body.length);
  const packetId = r.packetId('SUBACK');
  const properties = level === 5 ? decodeProperties(r, MASK) : undefined;
  const n = r.remaining;
  if (n === 0) throw protocolError('SUBACK without return codes');
  const reasonCodes = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const c = body[r.pos + i]!;
    if (level !== 5 && c > 2 && c !== SUBACK_FAILURE_V4) {
      throw protocolError(`SUBACK return code 0x${c.toString(16)} [MQTT-3.9.3-2]`);
    }
    reasonCodes[i] = c;
  }
  const packet: SubackPacket = { type: 'suback', packetId, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encodeSuback(p: SubackPacket, level: ProtocolLevel): Buffer {
  const id = p.packetId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw invalidPacket(`SUBACK packet identifier ${id}`);
  const codes = p.reasonCodes;
  if (codes.length === 0) throw invalidPacket('SUBACK needs at least one return code');
  let remaining = 2 + codes.length;
  let propsLen = 0;
  if (level === 5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  const buf = allocPacket(PacketType.SUBACK << 4, remaining);
  let off = writeU16(buf, buf.length - remaining, id);
  if (level === 5) off = writeProperties(buf, off, p.properties, MASK, propsLen);
  for (let i = 0; i < codes.length; i++) {
    let c = codes[i]!;
    if (!Number.isInteger(c) || c < 0 || c > 0xff) throw invalidPacket(`SUBACK code ${c}`);
    if (level !== 5 && c > 2) {
      if (c < 0x80) throw invalidPacket(`SUBACK return code ${c} has no 3.1.1 meaning`);
      c = SUBACK_FAILURE_V4;
    }
    buf[off++] = c;
  }
  return buf;
}
