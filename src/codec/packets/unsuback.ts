/**
 * UNSUBACK [MQTT-3.11]: packet identifier only in 3.1.1 (remaining length 2);
 * in 5.0 also properties and one reason code per topic filter.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { UnsubackPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, protocolError, varintLength, writeU16 } from '../primitives.js';

const MASK = propertyMask(PacketType.UNSUBACK);

export function decodeUnsuback(body: Buffer, level: ProtocolLevel): UnsubackPacket {
  const r = new Reader(body, 0, body.length);
  const packetId = r.packetId('UNSUBACK');
  if (level !== 5) {
    r.done('UNSUBACK');
    return { type: 'unsuback', packetId, reasonCodes: [] };
  }
  const properties = decodeProperties(r, MASK);
  const n = r.remaining;
  if (n === 0) throw protocolError('UNSUBACK without reason codes');
  const reasonCodes = new Array<number>(n);
  for (let i = 0; i < n; i++) reasonCodes[i] = body[r.pos + i]!;
  const packet: UnsubackPacket = { type: 'unsuback', packetId, reasonCodes };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encodeUnsuback(p: UnsubackPacket, level: ProtocolLevel): Buffer {
  const id = p.packetId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw invalidPacket(`UNSUBACK packet identifier ${id}`);
  if (level !== 5) {
    const buf = allocPacket(PacketType.UNSUBACK << 4, 2);
    writeU16(buf, 2, id);
    return buf;
  }
  const codes = p.reasonCodes;
  if (codes.length === 0) throw invalidPacket('UNSUBACK needs one reason code per topic filter');
  const propsLen = propertiesLength(p.properties, MASK);
  const remaining = 2 + varintLength(propsLen) + propsLen + codes.length;
  const buf = allocPacket(PacketType.UNSUBACK << 4, remaining);
  let off = writeU16(buf, buf.length - remaining, id);
  off = writeProperties(buf, off, p.properties, MASK, propsLen);
  for (let i = 0; i < codes.length; i++) {
    const c = codes[i]!;
    if (!Number.isInteger(c) || c < 0 || c > 0xff) throw invalidPacket(`UNSUBACK reason code ${c}`);
    buf[off++] = c;
  }
  return buf;
}
