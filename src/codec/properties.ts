/**
 * MQTT 5.0 properties [MQTT 5.0 §2.2.2]: one table gives each identifier its
 * wire type, the packets that may carry it and its field in `Properties`.
 *
 * Rules applied when decoding:
 * - an identifier not in the table is a Malformed Packet (0x81);
 * - a known property in a packet that does not allow it, a repeated property
 *   other than User Property, or a repeated Subscription Identifier outside
 *   PUBLISH, is a Protocol Error (0x82) [MQTT 5.0 §2.2.2.2];
 * - Byte properties may only be 0 or 1, and Receive Maximum, Maximum Packet
 *   Size and Subscription Identifier may not be 0 (Protocol Error, per each
 *   property's definition in §3.1.2.11, §3.2.2.3 and §3.8.2.1);
 * - the property length must fit inside the packet (Malformed Packet).
 *
 * Encoding writes properties in ascending identifier order and silently skips
 * any property the packet type does not allow, so a Properties object taken
 * from one packet can be reused for another without producing a packet the
 * peer must reject.
 */
import { MAX_VARINT, PacketType, PropertyId } from './constants.js';
import type { Properties, UserProperties } from './types.js';
import {
  Reader,
  binaryLength,
  invalidPacket,
  malformed,
  protocolError,
  utf8Length,
  varintLength,
  writeBinary,
  writeU16,
  writeU32,
  writeUtf8,
  writeVarint,
} from './primitives.js';

/** Bit for will properties in CONNECT; packet types use `1 << type` (type 0 is reserved). */
export const WILL_PROPERTIES = 1;
export const propertyMask = (type: number): number => 1 << type;

const CONNECT = 1 << PacketType.CONNECT;
const CONNACK = 1 << PacketType.CONNACK;
const PUBLISH = 1 << PacketType.PUBLISH;
const PUBACK = 1 << PacketType.PUBACK;
const PUBREC = 1 << PacketType.PUBREC;
const PUBREL = 1 << PacketType.PUBREL;
const PUBCOMP = 1 << PacketType.PUBCOMP;
const SUBSCRIBE = 1 << PacketType.SUBSCRIBE;
const SUBACK = 1 << PacketType.SUBACK;
const UNSUBSCRIBE = 1 << PacketType.UNSUBSCRIBE;
const UNSUBACK = 1 << PacketType.UNSUBACK;
const DISCONNECT = 1 << PacketType.DISCONNECT;
const AUTH = 1 << PacketType.AUTH;
const WILL = WILL_PROPERTIES;

const ACKS = PUBACK | PUBREC | PUBREL | PUBCOMP;
const ALL =
  CONNECT | CONNACK | PUBLISH | WILL | ACKS | SUBSCRIBE | SUBACK | UNSUBSCRIBE | UNSUBACK | DISCONNECT | AUTH;

const BYTE = 1;
const U16 = 2;
const U32 = 3;
const VARINT = 4;
const STRING = 5;
const BINARY = 6;
const PAIR = 7;

interface PropertySpec {
  readonly id: number;
  readonly key: keyof Properties;
  readonly type: number;
  /** Mask of packet types (and WILL) that may carry it. */
  readonly allowed: number;
  /** 0 is a Protocol Error for this property. */
  readonly nonZero: boolean;
}

const spec = (id: number, key: keyof Properties, type: number, allowed: number, nonZero = false): PropertySpec => ({
  id,
  key,
  type,
  allowed,
  nonZero,
});

/** Ascending identifier order, which is also the encoding order. */
const SPECS: readonly PropertySpec[] = [
  spec(PropertyId.PAYLOAD_FORMAT_INDICATOR, 'payloadFormatIndicator', BYTE, PUBLISH | WILL),
  spec(PropertyId.MESSAGE_EXPIRY_INTERVAL, 'messageExpiryInterval', U32, PUBLISH | WILL),
  spec(PropertyId.CONTENT_TYPE, 'contentType', STRING, PUBLISH | WILL),
  spec(PropertyId.RESPONSE_TOPIC, 'responseTopic', STRING, PUBLISH | WILL),
  spec(PropertyId.CORRELATION_DATA, 'correlationData', BINARY, PUBLISH | WILL),
  spec(PropertyId.SUBSCRIPTION_IDENTIFIER, 'subscriptionIdentifiers', VARINT, PUBLISH | SUBSCRIBE, true),
  spec(PropertyId.SESSION_EXPIRY_INTERVAL, 'sessionExpiryInterval', U32, CONNECT | CONNACK | DISCONNECT),
  spec(PropertyId.ASSIGNED_CLIENT_IDENTIFIER, 'assignedClientIdentifier', STRING, CONNACK),
  spec(PropertyId.SERVER_KEEP_ALIVE, 'serverKeepAlive', U16, CONNACK),
  spec(PropertyId.AUTHENTICATION_METHOD, 'authenticationMethod', STRING, CONNECT | CONNACK | AUTH),
  spec(PropertyId.AUTHENTICATION_DATA, 'authenticationData', BINARY, CONNECT | CONNACK | AUTH),
  spec(PropertyId.REQUEST_PROBLEM_INFORMATION, 'requestProblemInformation', BYTE, CONNECT),
  spec(PropertyId.WILL_DELAY_INTERVAL, 'willDelayInterval', U32, WILL),
  spec(PropertyId.REQUEST_RESPONSE_INFORMATION, 'requestResponseInformation', BYTE, CONNECT),
  spec(PropertyId.RESPONSE_INFORMATION, 'responseInformation', STRING, CONNACK),
  spec(PropertyId.SERVER_REFERENCE, 'serverReference', STRING, CONNACK | DISCONNECT),
  spec(PropertyId.REASON_STRING, 'reasonString', STRING, CONNACK | ACKS | SUBACK | UNSUBACK | DISCONNECT | AUTH),
  spec(PropertyId.RECEIVE_MAXIMUM, 'receiveMaximum', U16, CONNECT | CONNACK, true),
  spec(PropertyId.TOPIC_ALIAS_MAXIMUM, 'topicAliasMaximum', U16, CONNECT | CONNACK),
  // Topic Alias 0 is left to the broker, which answers it with 0x94 [MQTT-3.3.2-8].
  spec(PropertyId.TOPIC_ALIAS, 'topicAlias', U16, PUBLISH),
  spec(PropertyId.MAXIMUM_QOS, 'maximumQoS', BYTE, CONNACK),
  spec(PropertyId.RETAIN_AVAILABLE, 'retainAvailable', BYTE, CONNACK),
  spec(PropertyId.USER_PROPERTY, 'userProperties', PAIR, ALL),
  spec(PropertyId.MAXIMUM_PACKET_SIZE, 'maximumPacketSize', U32, CONNECT | CONNACK, true),
  spec(PropertyId.WILDCARD_SUBSCRIPTION_AVAILABLE, 'wildcardSubscriptionAvailable', BYTE, CONNACK),
  spec(PropertyId.SUBSCRIPTION_IDENTIFIER_AVAILABLE, 'subscriptionIdentifierAvailable', BYTE, CONNACK),
  spec(PropertyId.SHARED_SUBSCRIPTION_AVAILABLE, 'sharedSubscriptionAvailable', BYTE, CONNACK),
];

const BY_ID: ReadonlyArray<PropertySpec | undefined> = (() => {
  const table: Array<PropertySpec | undefined> = new Array<PropertySpec | undefined>(128).fill(undefined);
  for (const s of SPECS) table[s.id] = s;
  return table;
})();

const NAMES: Record<number, string> = {
  [CONNECT]: 'CONNECT',
  [CONNACK]: 'CONNACK',
  [PUBLISH]: 'PUBLISH',
  [PUBACK]: 'PUBACK',
  [PUBREC]: 'PUBREC',
  [PUBREL]: 'PUBREL',
  [PUBCOMP]: 'PUBCOMP',
  [SUBSCRIBE]: 'SUBSCRIBE',
  [SUBACK]: 'SUBACK',
  [UNSUBSCRIBE]: 'UNSUBSCRIBE',
  [UNSUBACK]: 'UNSUBACK',
  [DISCONNECT]: 'DISCONNECT',
  [AUTH]: 'AUTH',
  [WILL]: 'will properties',
};

/** True when the packet (or will) may carry the property at all. */
export function isPropertyAllowed(id: number, mask: number): boolean {
  const s = BY_ID[id];
  return s !== undefined && (s.allowed & mask) !== 0;
}

type MutableProps = Record<string, unknown>;

/**
 * Read a property length and the properties after it. `mask` is the single
 * bit of the packet being decoded. Returns undefined when the length is 0,
 * so packets without properties allocate nothing.
 */
export function decodeProperties(r: Reader, mask: number): Properties | undefined {
  const len = r.varint('property length');
  if (len === 0) return undefined;
  if (len > r.remaining) throw malformed(`property length ${len} exceeds the ${r.remaining} bytes left`);
  const end = r.pos + len;
  const out: MutableProps = {};
  // Read the values through a cursor limited to the property block so that a
  // value running past the property length is malformed.
  const p = new Reader(r.buf, r.pos, end);
  while (p.pos < end) {
    const id = p.varint('property identifier');
    const s = id < BY_ID.length ? BY_ID[id] : undefined;
    if (s === undefined) throw malformed(`unknown property identifier 0x${id.toString(16)}`);
    if ((s.allowed & mask) === 0) {
      throw protocolError(`property ${s.key} (0x${id.toString(16)}) is not allowed in ${NAMES[mask] ?? 'this packet'}`);
    }
    switch (s.type) {
      case BYTE: {
        const v = p.u8(s.key);
        if (v > 1) throw protocolError(`${s.key} must be 0 or 1, got ${v}`);
        setOnce(out, s, v);
        break;
      }
      case U16: {
        const v = p.u16(s.key);
        if (v === 0 && s.nonZero) throw protocolError(`${s.key} must not be 0`);
        setOnce(out, s, v);
        break;
      }
      case U32: {
        const v = p.u32(s.key);
        if (v === 0 && s.nonZero) throw protocolError(`${s.key} must not be 0`);
        setOnce(out, s, v);
        break;
      }
      case VARINT: {
        // Only the Subscription Identifier is a variable byte integer.
        const v = p.varint(s.key);
        if (v === 0) throw protocolError('subscription identifier must not be 0 [MQTT 5.0 §3.8.2.1.2]');
        const list = out[s.key] as number[] | undefined;
        if (list === undefined) out[s.key] = [v];
        else if (mask === PUBLISH) list.push(v);
        else throw protocolError(`subscription identifier repeated in ${NAMES[mask] ?? 'packet'}`);
        break;
      }
      case STRING:
        setOnce(out, s, p.utf8(s.key));
        break;
      case BINARY:
        setOnce(out, s, p.binary(s.key));
        break;
      default: {
        // PAIR: user properties keep wire order and duplicates [MQTT-3.3.2-18].
        const k = p.utf8('user property name');
        const v = p.utf8('user property value');
        const list = out[s.key] as UserProperties | undefined;
        if (list === undefined) out[s.key] = [[k, v]];
        else list.push([k, v]);
      }
    }
  }
  r.pos = end;
  return out as Properties;
}

function setOnce(out: MutableProps, s: PropertySpec, v: unknown): void {
  if (out[s.key] !== undefined) throw protocolError(`property ${s.key} appears more than once`);
  out[s.key] = v;
}

// ---------------------------------------------------------------------------
// Encoding

function checkInt(s: PropertySpec, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalidPacket(`property ${s.key} must be an integer in 0..${max}`);
  }
  return v;
}

function valueLength(s: PropertySpec, v: unknown): number {
  switch (s.type) {
    case BYTE:
      checkInt(s, v, 0xff);
      return 2;
    case U16:
      checkInt(s, v, 0xffff);
      return 3;
    case U32:
      checkInt(s, v, 0xffff_ffff);
      return 5;
    case VARINT: {
      if (!Array.isArray(v)) throw invalidPacket(`property ${s.key} must be an array`);
      let n = 0;
      for (const id of v as unknown[]) n += 1 + varintLength(checkInt(s, id, MAX_VARINT));
      return n;
    }
    case STRING:
      return 3 + utf8Length(v as string, s.key);
    case BINARY:
      return 3 + binaryLength(v as Buffer, s.key);
    default: {
      if (!Array.isArray(v)) throw invalidPacket(`property ${s.key} must be an array of [name, value]`);
      let n = 0;
      for (const pair of v as UserProperties) {
        n += 5 + utf8Length(pair[0], 'user property name') + utf8Length(pair[1], 'user property value');
      }
      return n;
    }
  }
}

/** Bytes of the properties themselves, without the property length prefix. */
export function propertiesLength(props: Properties | undefined, mask: number): number {
  if (props === undefined) return 0;
  const rec = props as MutableProps;
  let n = 0;
  for (let i = 0; i < SPECS.length; i++) {
    const s = SPECS[i]!;
    const v = rec[s.key];
    if (v === undefined || (s.allowed & mask) === 0) continue;
    if (s.type === VARINT && mask !== PUBLISH && Array.isArray(v) && v.length > 1) {
      throw invalidPacket('only PUBLISH may carry more than one subscription identifier');
    }
    n += valueLength(s, v);
  }
  return n;
}

/** Property length prefix plus properties; `len` comes from propertiesLength. */
export function writeProperties(
  buf: Buffer,
  off: number,
  props: Properties | undefined,
  mask: number,
  len: number,
): number {
  off = writeVarint(buf, off, len);
  if (props === undefined || len === 0) return off;
  const rec = props as MutableProps;
  for (let i = 0; i < SPECS.length; i++) {
    const s = SPECS[i]!;
    const v = rec[s.key];
    if (v === undefined || (s.allowed & mask) === 0) continue;
    switch (s.type) {
      case BYTE:
        buf[off++] = s.id;
        buf[off++] = v as number;
        break;
      case U16:
        buf[off++] = s.id;
        off = writeU16(buf, off, v as number);
        break;
      case U32:
        buf[off++] = s.id;
        off = writeU32(buf, off, v as number);
        break;
      case VARINT:
        for (const id of v as number[]) {
          buf[off++] = s.id;
          off = writeVarint(buf, off, id);
        }
        break;
      case STRING:
        buf[off++] = s.id;
        off = writeUtf8(buf, off, v as string, Buffer.byteLength(v as string, 'utf8'));
        break;
      case BINARY:
        buf[off++] = s.id;
        off = writeBinary(buf, off, v as Buffer);
        break;
      default:
        for (const [k, val] of v as UserProperties) {
          buf[off++] = s.id;
          off = writeUtf8(buf, off, k, Buffer.byteLength(k, 'utf8'));
          off = writeUtf8(buf, off, val, Buffer.byteLength(val, 'utf8'));
        }
    }
  }
  return off;
}
