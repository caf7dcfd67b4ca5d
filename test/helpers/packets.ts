/**
 * An independent MQTT packet builder and a minimal response parser for the
 * integration tests (P8): every byte is written here by hand, from the
 * specification, and nothing is imported from src/codec, so the broker's codec
 * is never its own oracle.
 *
 * Builders return complete packets (fixed header included). They deliberately
 * accept out-of-spec values (wrong flags, QoS 3, wildcard topics, ...) so tests
 * can send malformed input.
 */

/** Control packet types, the high nibble of byte 1 [MQTT-2.2.1]. */
export const PT = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
  AUTH: 15,
} as const;

export type ProtocolVersion = 3 | 4 | 5;

// ---------------------------------------------------------------------------
// Primitives

/** Variable Byte Integer [MQTT-1.5.5 / 2.2.3]. */
export function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    bytes.push(b);
  } while (v > 0);
  return Buffer.from(bytes);
}

export function u16(value: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(value);
  return b;
}

export function u32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

/** UTF-8 string with a two-byte length prefix; a Buffer is written as-is (for invalid UTF-8). */
export function str(value: string | Buffer): Buffer {
  const body = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  return Buffer.concat([u16(body.length), body]);
}

/** Fixed header byte 1 + remaining length + body. */
export function packet(type: number, flags: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([((type & 0x0f) << 4) | (flags & 0x0f)]), varint(body.length), body]);
}

// ---------------------------------------------------------------------------
// MQTT 5 properties (only what the tests need)

export type PropertyValue = number | string | Buffer | [string, string];

/** Property id -> wire type [MQTT 5.0 §2.2.2.2]. */
const PROPERTY_TYPES: Record<number, 'u8' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair'> = {
  0x01: 'u8', // payload format indicator
  0x02: 'u32', // message expiry interval
  0x03: 'string', // content type
  0x08: 'string', // response topic
  0x09: 'binary', // correlation data
  0x0b: 'varint', // subscription identifier
  0x11: 'u32', // session expiry interval
  0x12: 'string', // assigned client identifier
  0x13: 'u16', // server keep alive
  0x15: 'string', // authentication method
  0x16: 'binary', // authentication data
  0x17: 'u8', // request problem information
  0x18: 'u32', // will delay interval
  0x19: 'u8', // request response information
  0x1a: 'string', // response information
  0x1c: 'string', // server reference
  0x1f: 'string', // reason string
  0x21: 'u16', // receive maximum
  0x22: 'u16', // topic alias maximum
  0x23: 'u16', // topic alias
  0x24: 'u8', // maximum qos
  0x25: 'u8', // retain available
  0x26: 'pair', // user property
  0x27: 'u32', // maximum packet size
  0x28: 'u8', // wildcard subscription available
  0x29: 'u8', // subscription identifiers available
  0x2a: 'u8', // shared subscription available
};

/** Encodes a v5 property block (length prefix included) from `[id, value]` pairs, in order. */
export function properties(list: ReadonlyArray<readonly [number, PropertyValue]> = []): Buffer {
  const parts: Buffer[] = [];
  for (const [id, value] of list) {
    parts.push(varint(id));
    const kind = PROPERTY_TYPES[id];
    if (kind === undefined) throw new Error(`packets.ts: unknown property id 0x${id.toString(16)}`);
    switch (kind) {
      case 'u8':
        parts.push(Buffer.from([value as number]));
        break;
      case 'u16':
        parts.push(u16(value as number));
        break;
      case 'u32':
        parts.push(u32(value as number));
        break;
      case 'varint':
        parts.push(varint(value as number));
        break;
      case 'string':
      case 'binary':
        parts.push(str(value as string | Buffer));
        break;
      case 'pair': {
        const [k, v] = value as [string, string];
        parts.push(str(k), str(v));
        break;
      }
    }
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([varint(body.length), body]);
}

// ---------------------------------------------------------------------------
// Client -> server packets

export interface WillOptions {
  topic: string;
  payload?: string | Buffer;
  qos?: number;
  retain?: boolean;
  /** v5 will properties, as `[id, value]` pairs. */
  properties?: ReadonlyArray<readonly [number, PropertyValue]>;
}

export interface ConnectOptions {
  /** Protocol level byte: 4 = 3.1.1 (default), 5 = 5.0, anything else for negative tests. */
  protocolVersion?: number;
  /** Protocol name; defaults to `MQTT` (or `MQIsdp` for level 3). */
  protocolName?: string;
  clientId?: string;
  /** Clean Session (3.1.1) / Clean Start (5.0); default true. */
  clean?: boolean;
  /** Seconds; default 60. */
  keepalive?: number;
  username?: string | Buffer;
  password?: string | Buffer;
  will?: WillOptions;
  /** Sets reserved bit 0 of the connect flags (must be rejected [MQTT-3.1.2-3]). */
  reservedFlag?: boolean;
  /** Overrides the computed connect-flags byte entirely (fields are still written per the options). */
  flags?: number;
  /** v5 CONNECT properties. */
  properties?: ReadonlyArray<readonly [number, PropertyValue]>;
}

/** CONNECT [MQTT-3.1]. */
export function connect(o: ConnectOptions = {}): Buffer {
  const level = o.protocolVersion ?? 4;
  const v5 = level === 5;
  const name = o.protocolName ?? (level === 3 ? 'MQIsdp' : 'MQTT');
  let flags = 0;
  if (o.reservedFlag === true) flags |= 0x01;
  if (o.clean ?? true) flags |= 0x02;
  if (o.will !== undefined) {
    flags |= 0x04;
    flags |= ((o.will.qos ?? 0) & 0x03) << 3;
    if (o.will.retain === true) flags |= 0x20;
  }
  if (o.password !== undefined) flags |= 0x40;
  if (o.username !== undefined) flags |= 0x80;
  if (o.flags !== undefined) flags = o.flags;

  const parts: Buffer[] = [str(name), Buffer.from([level & 0xff, flags]), u16(o.keepalive ?? 60)];
  if (v5) parts.push(properties(o.properties));
  parts.push(str(o.clientId ?? ''));
  if (o.will !== undefined) {
    if (v5) parts.push(properties(o.will.properties));
    parts.push(str(o.will.topic));
    const payload = o.will.payload ?? '';
    parts.push(str(typeof payload === 'string' ? Buffer.from(payload) : payload));
  }
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(typeof o.password === 'string' ? Buffer.from(o.password) : o.password));
  return packet(PT.CONNECT, 0, Buffer.concat(parts));
}

export interface PublishOptions {
  topic: string | Buffer;
  payload?: string | Buffer;
  /** 0..3 (3 is invalid and for negative tests). */
  qos?: number;
  retain?: boolean;
  dup?: boolean;
  /** Packet identifier; required for QoS > 0. */
  id?: number;
  /** Write a v5 property block. */
  protocolVersion?: ProtocolVersion;
  properties?: ReadonlyArray<readonly [number, PropertyValue]>;
}

/** PUBLISH [MQTT-3.3]. */
export function publish(o: PublishOptions): Buffer {
  const qos = o.qos ?? 0;
  const flags = (o.dup === true ? 0x08 : 0) | ((qos & 0x03) << 1) | (o.retain === true ? 0x01 : 0);
  const parts: Buffer[] = [str(o.topic)];
  if (qos > 0) {
    if (o.id === undefined) throw new Error('packets.ts: publish with QoS > 0 needs an id');
    parts.push(u16(o.id));
  }
  if (o.protocolVersion === 5) parts.push(properties(o.properties));
  const payload = o.payload ?? '';
  parts.push(typeof payload === 'string' ? Buffer.from(payload) : payload);
  return packet(PT.PUBLISH, flags, Buffer.concat(parts));
}

function ack(type: number, flags: number, id: number, reasonCode?: number): Buffer {
  const body = reasonCode === undefined ? u16(id) : Buffer.concat([u16(id), Buffer.from([reasonCode])]);
  return packet(type, flags, body);
}

/** PUBACK [MQTT-3.4]; a reason code is written only when given (v5). */
export const puback = (id: number, reasonCode?: number): Buffer => ack(PT.PUBACK, 0, id, reasonCode);
/** PUBREC [MQTT-3.5]. */
export const pubrec = (id: number, reasonCode?: number): Buffer => ack(PT.PUBREC, 0, id, reasonCode);
/** PUBREL [MQTT-3.6]; fixed-header flags are 0010 [MQTT-3.6.1-1]. */
export const pubrel = (id: number, reasonCode?: number): Buffer => ack(PT.PUBREL, 0x02, id, reasonCode);
/** PUBCOMP [MQTT-3.7]. */
export const pubcomp = (id: number, reasonCode?: number): Buffer => ack(PT.PUBCOMP, 0, id, reasonCode);

export interface SubscriptionRequest {
  filter: string | Buffer;
  qos?: number;
  /** v5 subscription options bits above QoS (no-local 0x04, RAP 0x08, retain handling << 4). */
  options?: number;
}

/** SUBSCRIBE [MQTT-3.8]; `flags` defaults to the required 0010 [MQTT-3.8.1-1]. */
export function subscribe(
  id: number,
  subs: ReadonlyArray<SubscriptionRequest | string>,
  o: { protocolVersion?: ProtocolVersion; flags?: number; properties?: ReadonlyArray<readonly [number, PropertyValue]> } = {},
): Buffer {
  const parts: Buffer[] = [u16(id)];
  if (o.protocolVersion === 5) parts.push(properties(o.properties));
  for (const s of subs) {
    const sub = typeof s === 'string' ? { filter: s } : s;
    parts.push(str(sub.filter), Buffer.from([((sub.qos ?? 0) & 0x03) | (sub.options ?? 0)]));
  }
  return packet(PT.SUBSCRIBE, o.flags ?? 0x02, Buffer.concat(parts));
}

/** UNSUBSCRIBE [MQTT-3.10]; flags 0010 [MQTT-3.10.1-1]. */
export function unsubscribe(
  id: number,
  filters: ReadonlyArray<string>,
  o: { protocolVersion?: ProtocolVersion; flags?: number } = {},
): Buffer {
  const parts: Buffer[] = [u16(id)];
  if (o.protocolVersion === 5) parts.push(properties());
  for (const f of filters) parts.push(str(f));
  return packet(PT.UNSUBSCRIBE, o.flags ?? 0x02, Buffer.concat(parts));
}

/** PINGREQ [MQTT-3.12]. */
export const pingreq = (): Buffer => Buffer.from([0xc0, 0x00]);

/** DISCONNECT [MQTT-3.14]; v5 may carry a reason code. */
export function disconnect(reasonCode?: number): Buffer {
  return reasonCode === undefined ? Buffer.from([0xe0, 0x00]) : packet(PT.DISCONNECT, 0, Buffer.from([reasonCode, 0x00]));
}

// ---------------------------------------------------------------------------
// Server -> client parsing

export interface ConnackPacket {
  type: 'connack';
  sessionPresent: boolean;
  /** 3.1.1 return code or 5.0 reason code. */
  returnCode: number;
}
export interface PublishPacket {
  type: 'publish';
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  /** Packet identifier (QoS > 0 only). */
  id: number | undefined;
}
export interface AckPacket<T extends 'puback' | 'pubrec' | 'pubrel' | 'pubcomp' | 'unsuback'> {
  type: T;
  id: number;
  /** Fixed-header flags (PUBREL must be 0010). */
  flags: number;
  /** v5 reason code when present. */
  reasonCode: number | undefined;
}
export interface SubackPacket {
  type: 'suback';
  id: number;
  /** Granted QoS / failure (0x80) per filter, or v5 reason codes. */
  granted: number[];
}
export interface PingrespPacket {
  type: 'pingresp';
}
export interface DisconnectPacket {
  type: 'disconnect';
  reasonCode: number;
}
/** A packet a server must never send to a client (or an unparsed one). */
export interface OtherPacket {
  type: 'other';
  packetType: number;
  flags: number;
  body: Buffer;
}

export interface PacketMap {
  connack: ConnackPacket;
  publish: PublishPacket;
  puback: AckPacket<'puback'>;
  pubrec: AckPacket<'pubrec'>;
  pubrel: AckPacket<'pubrel'>;
  pubcomp: AckPacket<'pubcomp'>;
  unsuback: AckPacket<'unsuback'>;
  suback: SubackPacket;
  pingresp: PingrespPacket;
  disconnect: DisconnectPacket;
  other: OtherPacket;
}
export type PacketName = keyof PacketMap;
export type ParsedPacket = PacketMap[PacketName];

/** Skips a v5 property block at `offset`; returns the offset after it. */
function skipProperties(body: Buffer, offset: number): number {
  let len = 0;
  let mul = 1;
  let i = offset;
  for (;;) {
    const b = body[i++];
    if (b === undefined) throw new Error('packets.ts: truncated property length');
    len += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    mul *= 128;
  }
  return i + len;
}

/** Decodes one complete packet body (after the fixed header). */
export function decodePacket(byte1: number, body: Buffer, version: ProtocolVersion): ParsedPacket {
  const type = byte1 >> 4;
  const flags = byte1 & 0x0f;
  const v5 = version === 5;
  switch (type) {
    case PT.CONNACK:
      return { type: 'connack', sessionPresent: ((body[0] ?? 0) & 0x01) === 1, returnCode: body[1] ?? -1 };
    case PT.PUBLISH: {
      const qos = (flags >> 1) & 0x03;
      const topicLen = body.readUInt16BE(0);
      const topic = body.subarray(2, 2 + topicLen).toString('utf8');
      let offset = 2 + topicLen;
      let id: number | undefined;
      if (qos > 0) {
        id = body.readUInt16BE(offset);
        offset += 2;
      }
      if (v5) offset = skipProperties(body, offset);
      return {
        type: 'publish',
        topic,
        payload: Buffer.from(body.subarray(offset)),
        qos,
        retain: (flags & 0x01) === 1,
        dup: (flags & 0x08) !== 0,
        id,
      };
    }
    case PT.PUBACK:
    case PT.PUBREC:
    case PT.PUBREL:
    case PT.PUBCOMP:
    case PT.UNSUBACK: {
      const name = ({ 4: 'puback', 5: 'pubrec', 6: 'pubrel', 7: 'pubcomp', 11: 'unsuback' } as const)[type];
      const reasonCode = type !== PT.UNSUBACK && body.length > 2 ? body[2] : undefined;
      return { type: name, id: body.readUInt16BE(0), flags, reasonCode } as ParsedPacket;
    }
    case PT.SUBACK: {
      const id = body.readUInt16BE(0);
      const offset = v5 ? skipProperties(body, 2) : 2;
      return { type: 'suback', id, granted: [...body.subarray(offset)] };
    }
    case PT.PINGRESP:
      return { type: 'pingresp' };
    case PT.DISCONNECT:
      return { type: 'disconnect', reasonCode: body[0] ?? 0 };
    default:
      return { type: 'other', packetType: type, flags, body: Buffer.from(body) };
  }
}

/**
 * Streaming splitter: feed it socket chunks, get whole decoded packets back.
 * Minimal on purpose (tests only); rejects nothing except truncation.
 */
export class PacketParser {
  #buffer: Buffer = Buffer.alloc(0);
  version: ProtocolVersion;

  constructor(version: ProtocolVersion = 4) {
    this.version = version;
  }

  push(chunk: Buffer): ParsedPacket[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const out: ParsedPacket[] = [];
    for (;;) {
      const buf = this.#buffer;
      if (buf.length < 2) break;
      let len = 0;
      let mul = 1;
      let i = 1;
      let complete = false;
      while (i < buf.length && i <= 4) {
        const b = buf[i++] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) {
          complete = true;
          break;
        }
      }
      if (!complete || buf.length < i + len) break;
      out.push(decodePacket(buf[0] as number, buf.subarray(i, i + len), this.version));
      this.#buffer = buf.subarray(i + len);
    }
    return out;
  }
}
