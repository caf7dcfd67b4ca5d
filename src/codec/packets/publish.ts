/**
 * PUBLISH [MQTT-3.3]. Fixed header flags: DUP (bit 3), QoS (bits 2-1), RETAIN (bit 0).
 *
 * Besides the plain encoder this file has the encode-once fan-out path: the
 * broker serialises a message once per distinct (level, qos, retain,
 * properties) with a zero packet identifier, then `stampPacketId` copies the
 * shared bytes per subscriber and writes that subscriber's identifier and DUP.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { Properties, PublishPacket, QoS } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import {
  Reader,
  allocPacket,
  decodeUtf8,
  invalidPacket,
  malformed,
  protocolError,
  utf8Length,
  varintLength,
  writeU16,
  writeUtf8,
} from '../primitives.js';

const MASK = propertyMask(PacketType.PUBLISH);

export function decodePublish(header: number, body: Buffer, level: ProtocolLevel): PublishPacket {
  const qos = (header >> 1) & 3;
  if (qos === 3) throw malformed('PUBLISH with QoS 3 [MQTT-3.3.1-4]');
  const dup = (header & 0x08) !== 0;
  if (dup && qos === 0) throw malformed('PUBLISH with DUP set on QoS 0 [MQTT-3.3.1-2]');
  const end = body.length;
  if (end < 2) throw malformed('packet too short for PUBLISH topic');
  let pos = 2 + ((body[0]! << 8) | body[1]!);
  if (pos > end) throw malformed('PUBLISH topic runs past the end of the packet');
  // Topic semantics (wildcards, empty topic with alias) are the broker's job.
  const topic = decodeUtf8(body, 2, pos);
  let packetId = 0;
  if (qos > 0) {
    if (pos + 2 > end) throw malformed('packet too short for PUBLISH packet identifier');
    packetId = (body[pos]! << 8) | body[pos + 1]!;
    if (packetId === 0) throw protocolError('PUBLISH packet identifier is 0 [MQTT-2.3.1-1]');
    pos += 2;
  }
  let properties: Properties | undefined;
  if (level === 5) {
    if (pos < end && body[pos] === 0) {
      pos++; // property length 0: the common case, no Reader needed
    } else {
      const r = new Reader(body, pos, end);
      properties = decodeProperties(r, MASK);
      pos = r.pos;
    }
  }
  const packet: PublishPacket = {
    type: 'publish',
    topic,
    payload: body.subarray(pos, end),
    qos: qos as QoS,
    retain: (header & 1) !== 0,
    dup,
  };
  if (qos > 0) packet.packetId = packetId;
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

/** Writes the packet; the packet identifier field holds `packetId` when qos > 0. */
function writePublish(p: PublishPacket, level: ProtocolLevel, packetId: number, dup: boolean): Buffer {
  const qos = p.qos;
  if (qos !== 0 && qos !== 1 && qos !== 2) throw invalidPacket(`PUBLISH QoS ${String(qos)}`);
  if (dup && qos === 0) throw invalidPacket('DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]');
  const payload = p.payload;
  if (!Buffer.isBuffer(payload)) throw invalidPacket('PUBLISH payload must be a Buffer');
  const topicLen = utf8Length(p.topic, 'PUBLISH topic');
  let remaining = 2 + topicLen + payload.length;
  if (qos > 0) remaining += 2;
  let propsLen = 0;
  if (level === 5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  const buf = allocPacket(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (p.retain ? 1 : 0), remaining);
  let off = writeUtf8(buf, buf.length - remaining, p.topic, topicLen);
  if (qos > 0) off = writeU16(buf, off, packetId);
  if (level === 5) off = writeProperties(buf, off, p.properties, MASK, propsLen);
  payload.copy(buf, off);
  return buf;
}

export function encodePublish(p: PublishPacket, level: ProtocolLevel): Buffer {
  let id = 0;
  if (p.qos > 0) {
    id = p.packetId ?? 0;
    if (!isPacketId(id)) throw invalidPacket(`PUBLISH QoS ${p.qos} needs a packet identifier in 1..65535`);
  }
  return writePublish(p, level, id, p.dup);
}

function isPacketId(id: number): boolean {
  return Number.isInteger(id) && id > 0 && id <= 0xffff;
}

export interface EncodedPublish {
  /** The whole packet with DUP clear and packet identifier 0. Shared: never mutate. */
  readonly buffer: Buffer;
  /** Offset of the 2-byte packet identifier in `buffer`; -1 when qos 0. */
  readonly packetIdOffset: number;
}

/**
 * Encode a PUBLISH once for many subscribers. `p.packetId` and `p.dup` are
 * ignored; qos > 0 packets get a 0 placeholder for `stampPacketId`.
 */
export function encodePublishShared(p: PublishPacket, level: ProtocolLevel): EncodedPublish {
  const buffer = writePublish(p, level, 0, false);
  if (p.qos === 0) return { buffer, packetIdOffset: -1 };
  // Header byte, remaining-length varint (last byte < 0x80), topic length + topic.
  let off = 1;
  while (buffer[off]! >= 0x80) off++;
  off += 1;
  off += 2 + ((buffer[off]! << 8) | buffer[off + 1]!);
  return { buffer, packetIdOffset: off };
}

/** A copy of the shared packet with `packetId` written and DUP set to `dup`. */
export function stampPacketId(enc: EncodedPublish, packetId: number, dup: boolean): Buffer {
  const off = enc.packetIdOffset;
  if (off < 0) throw invalidPacket('a QoS 0 PUBLISH has no packet identifier to stamp');
  if (!isPacketId(packetId)) throw invalidPacket(`packet identifier ${packetId} is not in 1..65535`);
  const src = enc.buffer;
  const out = Buffer.allocUnsafe(src.length);
  src.copy(out, 0);
  out[0] = dup ? src[0]! | 0x08 : src[0]! & 0xf7;
  out[off] = packetId >>> 8;
  out[off + 1] = packetId & 0xff;
  return out;
}
