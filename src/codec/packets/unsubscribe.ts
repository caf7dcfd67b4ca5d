/**
 * UNSUBSCRIBE [MQTT-3.10]: packet identifier, 5.0 properties, then one or
 * more topic filters [MQTT-3.10.3-2]. Filters are decoded, not validated.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { UnsubscribePacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import {
  Reader,
  allocPacket,
  invalidPacket,
  protocolError,
  utf8Length,
  varintLength,
  writeU16,
  writeUtf8,
} from '../primitives.js';

const MASK = propertyMask(PacketType.UNSUBSCRIBE);

export function decodeUnsubscribe(body: Buffer, level: ProtocolLevel): UnsubscribePacket {
  const r = new Reader(body, 0, body.length);
  const packetId = r.packetId('UNSUBSCRIBE');
  const properties = level === 5 ? decodeProperties(r, MASK) : undefined;
  const filters: string[] = [];
  while (r.remaining > 0) filters.push(r.utf8('topic filter'));
  if (filters.length === 0) throw protocolError('UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]');
  const packet: UnsubscribePacket = { type: 'unsubscribe', packetId, filters };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encodeUnsubscribe(p: UnsubscribePacket, level: ProtocolLevel): Buffer {
  const id = p.packetId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw invalidPacket(`UNSUBSCRIBE packet identifier ${id}`);
  const filters = p.filters;
  if (filters.length === 0) throw invalidPacket('UNSUBSCRIBE needs at least one topic filter [MQTT-3.10.3-2]');
  const lens = new Array<number>(filters.length);
  let remaining = 2;
  for (let i = 0; i < filters.length; i++) {
    const n = utf8Length(filters[i]!, 'topic filter');
    lens[i] = n;
    remaining += 2 + n;
  }
  let propsLen = 0;
  if (level === 5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  // UNSUBSCRIBE carries the reserved flags 0b0010 [MQTT-3.10.1-1].
  const buf = allocPacket((PacketType.UNSUBSCRIBE << 4) | 0x02, remaining);
  let off = writeU16(buf, buf.length - remaining, id);
  if (level === 5) off = writeProperties(buf, off, p.properties, MASK, propsLen);
  for (let i = 0; i < filters.length; i++) off = writeUtf8(buf, off, filters[i]!, lens[i]!);
  return buf;
}
