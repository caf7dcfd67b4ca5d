/**
 * PUBACK, PUBREC, PUBREL, PUBCOMP [MQTT-3.4 .. 3.7]: a packet identifier and,
 * in 5.0, an optional reason code and properties. In 5.0 the reason code may
 * be left out when it is 0x00 with no properties (remaining length 2), and the
 * property length when there are no properties (remaining length 3)
 * [MQTT 5.0 §3.4.2.1]. Encoding always picks the shortest form.
 *
 * Decoding for level 5 always sets `reasonCode` (0 when absent on the wire);
 * level 3/4 never sets it.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { AckPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, varintLength, writeU16 } from '../primitives.js';

type AckName = AckPacket['type'];

const NAMES: readonly AckName[] = ['puback', 'pubrec', 'pubrel', 'pubcomp'];
const TYPES: Readonly<Record<AckName, number>> = {
  puback: PacketType.PUBACK,
  pubrec: PacketType.PUBREC,
  pubrel: PacketType.PUBREL,
  pubcomp: PacketType.PUBCOMP,
};

/** `header` has already passed the fixed-header flag check. */
export function decodeAck(header: number, body: Buffer, level: ProtocolLevel): AckPacket {
  const type = header >> 4;
  const name = NAMES[type - PacketType.PUBACK]!;
  const r = new Reader(body, 0, body.length);
  const packet: AckPacket = { type: name, packetId: r.packetId(name.toUpperCase()) };
  if (level === 5) {
    packet.reasonCode = r.remaining > 0 ? r.u8('reason code') : 0;
    if (r.remaining > 0) {
      const props = decodeProperties(r, propertyMask(type));
      if (props !== undefined) packet.properties = props;
    }
  }
  r.done(name.toUpperCase());
  return packet;
}

export function encodeAck(p: AckPacket, level: ProtocolLevel): Buffer {
  const type = TYPES[p.type];
  // PUBREL carries the reserved flags 0b0010 [MQTT-3.6.1-1].
  const header = (type << 4) | (type === PacketType.PUBREL ? 0x02 : 0);
  const id = p.packetId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw invalidPacket(`${p.type} packet identifier ${id}`);
  let remaining = 2;
  let propsLen = 0;
  const rc = p.reasonCode ?? 0;
  if (level === 5) {
    if (!Number.isInteger(rc) || rc < 0 || rc > 0xff) throw invalidPacket(`${p.type} reason code ${rc}`);
    propsLen = propertiesLength(p.properties, propertyMask(type));
    if (propsLen > 0) remaining += 1 + varintLength(propsLen) + propsLen;
    else if (rc !== 0) remaining += 1;
  }
  const buf = allocPacket(header, remaining);
  let off = writeU16(buf, buf.length - remaining, id);
  if (remaining > 2) {
    buf[off++] = rc;
    if (propsLen > 0) writeProperties(buf, off, p.properties, propertyMask(type), propsLen);
  }
  return buf;
}
