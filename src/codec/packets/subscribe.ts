/**
 * SUBSCRIBE [MQTT-3.8]: packet identifier, 5.0 properties, then one or more
 * (topic filter, subscription options) pairs. Options byte: bits 1-0 QoS,
 * and in 5.0 bit 2 No Local, bit 3 Retain As Published, bits 5-4 Retain
 * Handling. Reserved bits must be 0 (3.1.1: bits 7-2 [MQTT-3.8.3-4];
 * 5.0: bits 7-6 [MQTT-3.8.3-5]). Topic filters are decoded, not validated.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { QoS, SubscribePacket, Subscription } from '../types.js';
import { decodeProperties, propertiesLength, propertyMask, writeProperties } from '../properties.js';
import {
  Reader,
  allocPacket,
  invalidPacket,
  malformed,
  protocolError,
  utf8Length,
  varintLength,
  writeU16,
  writeUtf8,
} from '../primitives.js';

const MASK = propertyMask(PacketType.SUBSCRIBE);

export function decodeSubscribe(body: Buffer, level: ProtocolLevel): SubscribePacket {
  const r = new Reader(body, 0, body.length);
  const packetId = r.packetId('SUBSCRIBE');
  const properties = level === 5 ? decodeProperties(r, MASK) : undefined;
  const subscriptions: Subscription[] = [];
  while (r.remaining > 0) {
    const filter = r.utf8('topic filter');
    const opts = r.u8('subscription options');
    const qos = opts & 3;
    if (level === 5) {
      if ((opts & 0xc0) !== 0) throw malformed('subscription options reserved bits are set [MQTT-3.8.3-5]');
      if (qos === 3) throw protocolError('subscription maximum QoS 3');
      const retainHandling = (opts >> 4) & 3;
      if (retainHandling === 3) throw protocolError('retain handling 3');
      subscriptions.push({
        filter,
        qos: qos as QoS,
        noLocal: (opts & 0x04) !== 0,
        retainAsPublished: (opts & 0x08) !== 0,
        retainHandling: retainHandling as 0 | 1 | 2,
      });
    } else {
      if ((opts & 0xfc) !== 0) throw malformed('subscription options reserved bits are set [MQTT-3.8.3-4]');
      if (qos === 3) throw malformed('subscription QoS 3 [MQTT-3.8.3-4]');
      subscriptions.push({ filter, qos: qos as QoS, noLocal: false, retainAsPublished: false, retainHandling: 0 });
    }
  }
  if (subscriptions.length === 0) throw protocolError('SUBSCRIBE without topic filters [MQTT-3.8.3-3]');
  const packet: SubscribePacket = { type: 'subscribe', packetId, subscriptions };
  if (properties !== undefined) packet.properties = properties;
  return packet;
}

export function encodeSubscribe(p: SubscribePacket, level: ProtocolLevel): Buffer {
  const id = p.packetId;
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) throw invalidPacket(`SUBSCRIBE packet identifier ${id}`);
  const subs = p.subscriptions;
  if (subs.length === 0) throw invalidPacket('SUBSCRIBE needs at least one topic filter [MQTT-3.8.3-3]');
  const filterLens = new Array<number>(subs.length);
  let remaining = 2;
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    if (s.qos !== 0 && s.qos !== 1 && s.qos !== 2) throw invalidPacket(`subscription QoS ${String(s.qos)}`);
    if (level === 5 && s.retainHandling !== 0 && s.retainHandling !== 1 && s.retainHandling !== 2) {
      throw invalidPacket(`retain handling ${String(s.retainHandling)}`);
    }
    const n = utf8Length(s.filter, 'topic filter');
    filterLens[i] = n;
    remaining += 2 + n + 1;
  }
  let propsLen = 0;
  if (level === 5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  // SUBSCRIBE carries the reserved flags 0b0010 [MQTT-3.8.1-1].
  const buf = allocPacket((PacketType.SUBSCRIBE << 4) | 0x02, remaining);
  let off = writeU16(buf, buf.length - remaining, id);
  if (level === 5) off = writeProperties(buf, off, p.properties, MASK, propsLen);
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    off = writeUtf8(buf, off, s.filter, filterLens[i]!);
    buf[off++] =
      level === 5
        ? s.qos | (s.noLocal ? 0x04 : 0) | (s.retainAsPublished ? 0x08 : 0) | (s.retainHandling << 4)
        : s.qos;
  }
  return buf;
}
