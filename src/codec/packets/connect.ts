/**
 * CONNECT [MQTT-3.1]. The protocol level comes from the packet itself, so the
 * decoder needs no level argument; 'MQTT' 4 (3.1.1), 'MQTT' 5 (5.0) and
 * 'MQIsdp' 3 (3.1) are accepted, anything else is ERR_MQTT_UNSUPPORTED_PROTOCOL.
 *
 * Connect flags: 7 username, 6 password, 5 will retain, 4-3 will QoS, 2 will,
 * 1 clean session / clean start, 0 reserved.
 */
import { PacketType, type ProtocolLevel } from '../constants.js';
import type { ConnectPacket, QoS, Will } from '../types.js';
import { ternError } from '../../errors.js';
import {
  WILL_PROPERTIES,
  decodeProperties,
  propertiesLength,
  propertyMask,
  writeProperties,
} from '../properties.js';
import {
  Reader,
  allocPacket,
  binaryLength,
  invalidPacket,
  malformed,
  utf8Length,
  varintLength,
  writeBinary,
  writeU16,
  writeUtf8,
} from '../primitives.js';

const MASK = propertyMask(PacketType.CONNECT);

const USERNAME = 0x80;
const PASSWORD = 0x40;
const WILL_RETAIN = 0x20;
const WILL_FLAG = 0x04;
const CLEAN = 0x02;
const RESERVED = 0x01;

export function decodeConnect(body: Buffer): ConnectPacket {
  const r = new Reader(body, 0, body.length);
  const protocolName = r.utf8('CONNECT protocol name');
  const level = r.u8('CONNECT protocol level');
  if (!((protocolName === 'MQTT' && (level === 4 || level === 5)) || (protocolName === 'MQIsdp' && level === 3))) {
    // [MQTT-3.1.2-1] [MQTT-3.1.2-2]
    throw ternError('ERR_MQTT_UNSUPPORTED_PROTOCOL', `protocol '${protocolName}' level ${level}`);
  }
  const protocolLevel = level as ProtocolLevel;
  const flags = r.u8('CONNECT flags');
  if ((flags & RESERVED) !== 0) throw malformed('CONNECT reserved flag is set [MQTT-3.1.2-3]');
  const willQos = (flags >> 3) & 3;
  if ((flags & WILL_FLAG) === 0) {
    if (willQos !== 0) throw malformed('will QoS set without the will flag [MQTT-3.1.2-13]');
    if ((flags & WILL_RETAIN) !== 0) throw malformed('will retain set without the will flag [MQTT-3.1.2-15]');
  } else if (willQos === 3) {
    throw malformed('will QoS 3 [MQTT-3.1.2-14]');
  }
  if (protocolLevel < 5 && (flags & PASSWORD) !== 0 && (flags & USERNAME) === 0) {
    throw malformed('password flag set without the user name flag [MQTT-3.1.2-22]');
  }
  const keepalive = r.u16('CONNECT keep alive');
  const properties = protocolLevel === 5 ? decodeProperties(r, MASK) : undefined;
  const clientId = r.utf8('client identifier');
  const packet: ConnectPacket = {
    type: 'connect',
    protocolName,
    protocolLevel,
    clean: (flags & CLEAN) !== 0,
    keepalive,
    clientId,
  };
  if ((flags & WILL_FLAG) !== 0) {
    const willProps = protocolLevel === 5 ? decodeProperties(r, WILL_PROPERTIES) : undefined;
    const will: Will = {
      topic: r.utf8('will topic'),
      payload: r.binary('will payload'),
      qos: willQos as QoS,
      retain: (flags & WILL_RETAIN) !== 0,
    };
    if (willProps !== undefined) will.properties = willProps;
    packet.will = will;
  }
  if ((flags & USERNAME) !== 0) packet.username = r.utf8('user name');
  if ((flags & PASSWORD) !== 0) packet.password = r.binary('password');
  if (properties !== undefined) packet.properties = properties;
  r.done('CONNECT');
  return packet;
}

/** The `level` of the connection is irrelevant: name and level come from the packet. */
export function encodeConnect(p: ConnectPacket): Buffer {
  const v5 = p.protocolLevel === 5;
  if (p.protocolLevel !== 3 && p.protocolLevel !== 4 && !v5) {
    throw invalidPacket(`CONNECT protocol level ${String(p.protocolLevel)}`);
  }
  if (!Number.isInteger(p.keepalive) || p.keepalive < 0 || p.keepalive > 0xffff) {
    throw invalidPacket('CONNECT keepalive must be in 0..65535');
  }
  const nameLen = utf8Length(p.protocolName, 'protocol name');
  const clientIdLen = utf8Length(p.clientId, 'client identifier');
  let remaining = 2 + nameLen + 1 + 1 + 2 + 2 + clientIdLen;
  let propsLen = 0;
  if (v5) {
    propsLen = propertiesLength(p.properties, MASK);
    remaining += varintLength(propsLen) + propsLen;
  }
  let flags = p.clean ? CLEAN : 0;
  const will = p.will;
  let willTopicLen = 0;
  let willPropsLen = 0;
  if (will !== undefined) {
    if (will.qos !== 0 && will.qos !== 1 && will.qos !== 2) throw invalidPacket(`will QoS ${String(will.qos)}`);
    flags |= WILL_FLAG | (will.qos << 3) | (will.retain ? WILL_RETAIN : 0);
    willTopicLen = utf8Length(will.topic, 'will topic');
    remaining += 2 + willTopicLen + 2 + binaryLength(will.payload, 'will payload');
    if (v5) {
      willPropsLen = propertiesLength(will.properties, WILL_PROPERTIES);
      remaining += varintLength(willPropsLen) + willPropsLen;
    }
  }
  let usernameLen = 0;
  if (p.username !== undefined) {
    flags |= USERNAME;
    usernameLen = utf8Length(p.username, 'user name');
    remaining += 2 + usernameLen;
  }
  if (p.password !== undefined) {
    if (!v5 && p.username === undefined) throw invalidPacket('password without user name [MQTT-3.1.2-22]');
    flags |= PASSWORD;
    remaining += 2 + binaryLength(p.password, 'password');
  }
  const buf = allocPacket(PacketType.CONNECT << 4, remaining);
  let off = writeUtf8(buf, buf.length - remaining, p.protocolName, nameLen);
  buf[off++] = p.protocolLevel;
  buf[off++] = flags;
  off = writeU16(buf, off, p.keepalive);
  if (v5) off = writeProperties(buf, off, p.properties, MASK, propsLen);
  off = writeUtf8(buf, off, p.clientId, clientIdLen);
  if (will !== undefined) {
    if (v5) off = writeProperties(buf, off, will.properties, WILL_PROPERTIES, willPropsLen);
    off = writeUtf8(buf, off, will.topic, willTopicLen);
    off = writeBinary(buf, off, will.payload);
  }
  if (p.username !== undefined) off = writeUtf8(buf, off, p.username, usernameLen);
  if (p.password !== undefined) writeBinary(buf, off, p.password);
  return buf;
}
