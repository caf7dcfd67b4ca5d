/**
 * AUTH [MQTT 5.0 §3.15], 5.0 only: a reason code and properties. Both may be
 * left out (remaining length 0) only for 0x00 Success without properties
 * [MQTT 5.0 §3.15.2.1]; unlike DISCONNECT there is no 1-byte form, so a
 * remaining length of 1 is malformed and encoding never produces it.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { AuthPacket } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import { Reader, allocPacket, invalidPacket, varintLength } from '../primitives.js';

const MASK = propertyMask(PacketType.AUTH);

/** The dispatcher rejects AUTH on levels 3/4 before calling this. */
export function decodeAuth(body: Buffer): AuthPacket {
  if (body.length === 0) return { type: 'auth', reasonCode: 0 };
  const r = new Reader(body, 0, body.length);
  const packet: AuthPacket = { type: 'auth', reasonCode: r.u8('reason code') };
  const props = decodeProperties(r, MASK);
  if (props !== undefined) packet.properties = props;
  r.done('AUTH');
  return packet;
}

export function encodeAuth(p: AuthPacket, level: ProtocolLevel): Buffer {
  if (level !== 5) throw invalidPacket('AUTH exists only in MQTT 5.0');
  const rc = p.reasonCode;
  if (!Number.isInteger(rc) || rc < 0 || rc > 0xff) throw invalidPacket(`AUTH reason code ${rc}`);
  const propsLen = propertiesLength(p.properties, MASK);
  const remaining = propsLen === 0 && rc === 0 ? 0 : 1 + varintLength(propsLen) + propsLen;
  const buf = allocPacket(PacketType.AUTH << 4, remaining);
  if (remaining > 0) {
    const off = buf.length - remaining;
    buf[off] = rc;
    writeProperties(buf, off + 1, p.properties, MASK, propsLen);
  }
  return buf;
}
