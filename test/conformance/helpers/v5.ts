/**
 * MQTT 5.0 raw-packet toolkit for the conformance tests (P8): builders on top
 * of the independent builder in test/helpers/packets.ts, plus a parser of
 * server packets that keeps every v5 property in wire order (duplicates
 * included) and the byte size of each packet, and a bounded raw client.
 * Nothing here imports src/: the broker's codec is never its own oracle.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';
import * as P from '../../helpers/packets.js';
import type { PropertyValue } from '../../helpers/packets.js';

export { P };

/** Property identifiers [MQTT 5.0 §2.2.2.2]. */
export const Prop = {
  PAYLOAD_FORMAT_INDICATOR: 0x01,
  MESSAGE_EXPIRY_INTERVAL: 0x02,
  CONTENT_TYPE: 0x03,
  RESPONSE_TOPIC: 0x08,
  CORRELATION_DATA: 0x09,
  SUBSCRIPTION_IDENTIFIER: 0x0b,
  SESSION_EXPIRY_INTERVAL: 0x11,
  ASSIGNED_CLIENT_IDENTIFIER: 0x12,
  SERVER_KEEP_ALIVE: 0x13,
  AUTHENTICATION_METHOD: 0x15,
  AUTHENTICATION_DATA: 0x16,
  REQUEST_PROBLEM_INFORMATION: 0x17,
  WILL_DELAY_INTERVAL: 0x18,
  REQUEST_RESPONSE_INFORMATION: 0x19,
  RESPONSE_INFORMATION: 0x1a,
  SERVER_REFERENCE: 0x1c,
  REASON_STRING: 0x1f,
  RECEIVE_MAXIMUM: 0x21,
  TOPIC_ALIAS_MAXIMUM: 0x22,
  TOPIC_ALIAS: 0x23,
  MAXIMUM_QOS: 0x24,
  RETAIN_AVAILABLE: 0x25,
  USER_PROPERTY: 0x26,
  MAXIMUM_PACKET_SIZE: 0x27,
  WILDCARD_SUBSCRIPTION_AVAILABLE: 0x28,
  SUBSCRIPTION_IDENTIFIER_AVAILABLE: 0x29,
  SHARED_SUBSCRIPTION_AVAILABLE: 0x2a,
} as const;

/** Reason codes the tests check [MQTT 5.0 §2.4]. */
export const RC = {
  SUCCESS: 0x00,
  GRANTED_QOS_1: 0x01,
  GRANTED_QOS_2: 0x02,
  DISCONNECT_WITH_WILL: 0x04,
  NO_MATCHING_SUBSCRIBERS: 0x10,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  CONTINUE_AUTHENTICATION: 0x18,
  REAUTHENTICATE: 0x19,
  UNSPECIFIED_ERROR: 0x80,
  MALFORMED_PACKET: 0x81,
  PROTOCOL_ERROR: 0x82,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_IDENTIFIER_NOT_VALID: 0x85,
  BAD_USER_NAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  SERVER_SHUTTING_DOWN: 0x8b,
  BAD_AUTHENTICATION_METHOD: 0x8c,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  PACKET_IDENTIFIER_IN_USE: 0x91,
  PACKET_IDENTIFIER_NOT_FOUND: 0x92,
  RECEIVE_MAXIMUM_EXCEEDED: 0x93,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  PAYLOAD_FORMAT_INVALID: 0x99,
  RETAIN_NOT_SUPPORTED: 0x9a,
  QOS_NOT_SUPPORTED: 0x9b,
  USE_ANOTHER_SERVER: 0x9c,
  SERVER_MOVED: 0x9d,
  SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: 0x9e,
  SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: 0xa1,
  WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: 0xa2,
} as const;

/** Subscription option bits above the QoS [MQTT 5.0 §3.8.3.1]. */
export const Opt = {
  NO_LOCAL: 0x04,
  RETAIN_AS_PUBLISHED: 0x08,
  RETAIN_HANDLING_1: 0x10,
  RETAIN_HANDLING_2: 0x20,
} as const;

/** Reason codes a SUBACK may carry [MQTT 5.0 §3.9.3]. */
export const SUBACK_CODES: ReadonlySet<number> = new Set([0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2]);
/** Reason codes an UNSUBACK may carry [MQTT 5.0 §3.11.3]. */
export const UNSUBACK_CODES: ReadonlySet<number> = new Set([0x00, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91]);
/** Reason codes a server DISCONNECT may carry [MQTT 5.0 §3.14.2.1] (0x04 is client-only). */
export const DISCONNECT_CODES: ReadonlySet<number> = new Set([
  0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e,
  0x9f, 0xa0, 0xa1, 0xa2,
]);

export type PropList = ReadonlyArray<readonly [number, PropertyValue]>;

// ---------------------------------------------------------------------------
// Client -> server builders (v5)

let counter = 0;
/** A unique client identifier for this test process. */
export function cid(prefix = 'v5'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

export type Connect5Options = Omit<P.ConnectOptions, 'protocolVersion'>;

/** CONNECT at protocol level 5 (clean start and a unique client id unless given). */
export function connect(o: Connect5Options = {}): Buffer {
  return P.connect({ clientId: cid(), ...o, protocolVersion: 5 });
}

export type Publish5Options = Omit<P.PublishOptions, 'protocolVersion'>;

/** PUBLISH with a v5 property block. */
export function publish(o: Publish5Options): Buffer {
  return P.publish({ ...o, protocolVersion: 5 });
}

/** SUBSCRIBE with a v5 property block. */
export function subscribe(id: number, subs: ReadonlyArray<P.SubscriptionRequest | string>, properties: PropList = []): Buffer {
  return P.subscribe(id, subs, { protocolVersion: 5, properties });
}

/** UNSUBSCRIBE with an (empty) v5 property block. */
export function unsubscribe(id: number, filters: ReadonlyArray<string>): Buffer {
  return P.unsubscribe(id, filters, { protocolVersion: 5 });
}

/** DISCONNECT with a reason code and properties [MQTT 5.0 §3.14]. */
export function disconnect(reasonCode = 0, properties: PropList = []): Buffer {
  return P.packet(P.PT.DISCONNECT, 0, Buffer.concat([Buffer.from([reasonCode]), P.properties(properties)]));
}

/** AUTH [MQTT 5.0 §3.15]. */
export function auth(reasonCode: number, properties: PropList = [], flags = 0): Buffer {
  return P.packet(P.PT.AUTH, flags, Buffer.concat([Buffer.from([reasonCode]), P.properties(properties)]));
}

/** PUBACK/PUBREC/PUBREL/PUBCOMP with a reason code and properties. */
export function ack(type: number, id: number, reasonCode: number, properties: PropList = []): Buffer {
  const flags = type === P.PT.PUBREL ? 0x02 : 0;
  return P.packet(type, flags, Buffer.concat([P.u16(id), Buffer.from([reasonCode]), P.properties(properties)]));
}

// ---------------------------------------------------------------------------
// Server -> client parsing (v5)

export type PacketName =
  | 'connack'
  | 'publish'
  | 'puback'
  | 'pubrec'
  | 'pubrel'
  | 'pubcomp'
  | 'suback'
  | 'unsuback'
  | 'pingresp'
  | 'disconnect'
  | 'auth'
  | 'other';

const NAMES: Record<number, PacketName> = {
  2: 'connack',
  3: 'publish',
  4: 'puback',
  5: 'pubrec',
  6: 'pubrel',
  7: 'pubcomp',
  9: 'suback',
  11: 'unsuback',
  13: 'pingresp',
  14: 'disconnect',
  15: 'auth',
};

type Kind = 'u8' | 'u16' | 'u32' | 'varint' | 'string' | 'binary' | 'pair';
const KINDS: Record<number, Kind> = {
  0x01: 'u8',
  0x02: 'u32',
  0x03: 'string',
  0x08: 'string',
  0x09: 'binary',
  0x0b: 'varint',
  0x11: 'u32',
  0x12: 'string',
  0x13: 'u16',
  0x15: 'string',
  0x16: 'binary',
  0x17: 'u8',
  0x18: 'u32',
  0x19: 'u8',
  0x1a: 'string',
  0x1c: 'string',
  0x1f: 'string',
  0x21: 'u16',
  0x22: 'u16',
  0x23: 'u16',
  0x24: 'u8',
  0x25: 'u8',
  0x26: 'pair',
  0x27: 'u32',
  0x28: 'u8',
  0x29: 'u8',
  0x2a: 'u8',
};

/** The properties of one packet, in wire order, duplicates kept. */
export class Props {
  readonly list: Array<[number, PropertyValue]> = [];

  has(id: number): boolean {
    return this.list.some(([k]) => k === id);
  }

  /** The first value of property `id` (undefined when absent). */
  get(id: number): PropertyValue | undefined {
    return this.list.find(([k]) => k === id)?.[1];
  }

  /** Every value of property `id`, in wire order. */
  all(id: number): PropertyValue[] {
    return this.list.filter(([k]) => k === id).map(([, v]) => v);
  }

  num(id: number): number | undefined {
    const v = this.get(id);
    return typeof v === 'number' ? v : undefined;
  }

  str(id: number): string | undefined {
    const v = this.get(id);
    return typeof v === 'string' ? v : undefined;
  }

  ids(): number[] {
    return this.list.map(([k]) => k);
  }
}

export interface Packet5 {
  readonly name: PacketName;
  readonly type: number;
  readonly flags: number;
  /** Bytes on the wire, fixed header included. */
  readonly size: number;
  /** CONNACK/DISCONNECT/AUTH/ack reason code (0 when omitted on the wire). */
  readonly reasonCode: number;
  /** True when the reason code byte was on the wire. */
  readonly hasReasonCode: boolean;
  readonly sessionPresent: boolean;
  /** CONNACK acknowledge flags byte (bits 7..1 must be 0). */
  readonly ackFlags: number;
  readonly packetId: number;
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: number;
  readonly retain: boolean;
  readonly dup: boolean;
  /** SUBACK/UNSUBACK reason codes. */
  readonly reasonCodes: number[];
  readonly props: Props;
}

class Reader {
  offset: number;
  constructor(
    readonly buf: Buffer,
    offset = 0,
  ) {
    this.offset = offset;
  }
  get left(): number {
    return this.buf.length - this.offset;
  }
  u8(): number {
    const v = this.buf.readUInt8(this.offset);
    this.offset += 1;
    return v;
  }
  u16(): number {
    const v = this.buf.readUInt16BE(this.offset);
    this.offset += 2;
    return v;
  }
  u32(): number {
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }
  varint(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return value;
      mul *= 128;
    }
    throw new Error('v5.ts: variable byte integer longer than 4 bytes');
  }
  bytes(n: number): Buffer {
    if (n > this.left) throw new Error(`v5.ts: ${n} bytes wanted, ${this.left} left`);
    const v = Buffer.from(this.buf.subarray(this.offset, this.offset + n));
    this.offset += n;
    return v;
  }
  binary(): Buffer {
    return this.bytes(this.u16());
  }
  string(): string {
    return this.binary().toString('utf8');
  }
  props(): Props {
    const props = new Props();
    const len = this.varint();
    const end = this.offset + len;
    if (end > this.buf.length) throw new Error('v5.ts: property block runs past the packet');
    while (this.offset < end) {
      const id = this.varint();
      const kind = KINDS[id];
      if (kind === undefined) throw new Error(`v5.ts: server sent unknown property 0x${id.toString(16)}`);
      let v: PropertyValue;
      switch (kind) {
        case 'u8':
          v = this.u8();
          break;
        case 'u16':
          v = this.u16();
          break;
        case 'u32':
          v = this.u32();
          break;
        case 'varint':
          v = this.varint();
          break;
        case 'string':
          v = this.string();
          break;
        case 'binary':
          v = this.binary();
          break;
        case 'pair':
          v = [this.string(), this.string()];
          break;
      }
      props.list.push([id, v]);
    }
    if (this.offset !== end) throw new Error('v5.ts: property block length mismatch');
    return props;
  }
}

/** Decodes one complete v5 server packet (byte 1, body, total size). */
export function decode(byte1: number, body: Buffer, size: number): Packet5 {
  const type = byte1 >> 4;
  const flags = byte1 & 0x0f;
  const r = new Reader(body);
  const p = {
    name: NAMES[type] ?? 'other',
    type,
    flags,
    size,
    reasonCode: 0,
    hasReasonCode: false,
    sessionPresent: false,
    ackFlags: 0,
    packetId: 0,
    topic: '',
    payload: Buffer.alloc(0) as Buffer,
    qos: 0,
    retain: false,
    dup: false,
    reasonCodes: [] as number[],
    props: new Props(),
  };
  switch (type) {
    case P.PT.CONNACK:
      p.ackFlags = r.u8();
      p.sessionPresent = (p.ackFlags & 1) === 1;
      p.reasonCode = r.u8();
      p.hasReasonCode = true;
      if (r.left > 0) p.props = r.props();
      break;
    case P.PT.PUBLISH:
      p.qos = (flags >> 1) & 3;
      p.retain = (flags & 1) === 1;
      p.dup = (flags & 8) !== 0;
      p.topic = r.string();
      if (p.qos > 0) p.packetId = r.u16();
      p.props = r.props();
      p.payload = r.bytes(r.left);
      break;
    case P.PT.PUBACK:
    case P.PT.PUBREC:
    case P.PT.PUBREL:
    case P.PT.PUBCOMP:
      p.packetId = r.u16();
      if (r.left > 0) {
        p.reasonCode = r.u8();
        p.hasReasonCode = true;
      }
      if (r.left > 0) p.props = r.props();
      break;
    case P.PT.SUBACK:
    case P.PT.UNSUBACK:
      p.packetId = r.u16();
      p.props = r.props();
      while (r.left > 0) p.reasonCodes.push(r.u8());
      break;
    case P.PT.DISCONNECT:
    case P.PT.AUTH:
      if (r.left > 0) {
        p.reasonCode = r.u8();
        p.hasReasonCode = true;
      }
      if (r.left > 0) p.props = r.props();
      break;
    default:
      break;
  }
  return p;
}

function describe(p: Packet5): string {
  const props = p.props.list.length > 0 ? ` props=${JSON.stringify(p.props.list)}` : '';
  switch (p.name) {
    case 'publish':
      return `PUBLISH(topic=${p.topic}, qos=${p.qos}, retain=${p.retain}, dup=${p.dup}, id=${p.packetId}, payload=${p.payload.toString().slice(0, 40)}${props})`;
    case 'suback':
    case 'unsuback':
      return `${p.name.toUpperCase()}(id=${p.packetId}, codes=[${p.reasonCodes.map((c) => `0x${c.toString(16)}`).join(',')}]${props})`;
    default:
      return `${p.name.toUpperCase()}(id=${p.packetId}, rc=0x${p.reasonCode.toString(16)}${props})`;
  }
}

const WAIT_MS = 2000;

/**
 * A raw v5 TCP client: sends hand-built bytes, reads back fully parsed v5
 * packets (properties included), never acknowledges anything by itself.
 * Every wait is bounded; the socket is destroyed in `t.after`.
 */
export class Client5 {
  readonly #socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  readonly #queue: Packet5[] = [];
  /** Every packet ever received, in order (for size checks). */
  readonly received: Packet5[] = [];
  #waiters = new Set<() => void>();
  #closed = false;
  /** Server packets that broke the wire format (non-minimal lengths, undecodable bodies). */
  readonly encodingErrors: string[] = [];
  /** Millisecond timestamp of the server's close (or of socket error). */
  closedAt = 0;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#closed = true;
      this.closedAt = Date.now();
      this.#notify();
    });
  }

  static open(port: number, t: TestContext): Promise<Client5> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      const client = new Client5(socket);
      t.after(() => client.close());
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`Client5: TCP connect to ${port} timed out`));
      }, WAIT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(client);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Opens a connection, sends a v5 CONNECT and returns the CONNACK (whatever its reason code). */
  static async handshake(port: number, t: TestContext, o: Connect5Options = {}): Promise<{ client: Client5; connack: Packet5 }> {
    const client = await Client5.open(port, t);
    client.send(connect(o));
    const connack = await client.expect('connack');
    return { client, connack };
  }

  /** As handshake(), but fails unless the CONNACK reason code is 0. */
  static async connected(port: number, t: TestContext, o: Connect5Options = {}): Promise<Client5> {
    const { client, connack } = await Client5.handshake(port, t, o);
    if (connack.reasonCode !== 0) throw new Error(`Client5: CONNACK reason code 0x${connack.reasonCode.toString(16)}`);
    return client;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  send(...bufs: Buffer[]): void {
    if (this.#closed) return;
    for (const b of bufs) this.#socket.write(b);
  }

  /** Destroys the socket with no DISCONNECT (a network failure, as the server sees it). */
  close(): void {
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  async next(timeoutMs = WAIT_MS, what = 'a packet'): Promise<Packet5> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.#queue.shift();
      if (p !== undefined) return p;
      if (this.#closed) throw new Error(`Client5: connection closed while waiting for ${what}`);
      await this.#changed(deadline - Date.now(), `timed out after ${timeoutMs} ms waiting for ${what}`);
    }
  }

  /** The next packet must be a `name` packet. */
  async expect(name: PacketName, timeoutMs = WAIT_MS): Promise<Packet5> {
    const p = await this.next(timeoutMs, name.toUpperCase());
    if (p.name !== name) throw new Error(`Client5: expected ${name.toUpperCase()}, got ${describe(p)}`);
    return p;
  }

  /** Skips packets until a `name` packet arrives (PINGRESP and the like in between are dropped). */
  async waitFor(name: PacketName, timeoutMs = WAIT_MS): Promise<Packet5> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await this.next(Math.max(1, deadline - Date.now()), name.toUpperCase());
      if (p.name === name) return p;
    }
  }

  /** Asserts no packet arrives within `ms`. */
  async expectNoPacket(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = this.#queue[0];
      if (p !== undefined) throw new Error(`Client5: expected no packet, got ${describe(p)}`);
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) return;
      try {
        await this.#changed(left, '');
      } catch {
        return;
      }
    }
  }

  /** Waits for the server to close the connection; returns packets received but not consumed. */
  async expectClose(timeoutMs = WAIT_MS): Promise<Packet5[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      const unread = this.#queue.map(describe).join(', ');
      await this.#changed(deadline - Date.now(), `server did not close the connection within ${timeoutMs} ms (unread: [${unread}])`);
    }
    return this.#queue.splice(0);
  }

  /** Waits for the server's DISCONNECT and the close that must follow it [MQTT-4.13.2-1]. */
  async expectDisconnect(timeoutMs = WAIT_MS): Promise<Packet5> {
    const rest = await this.expectClose(timeoutMs);
    const d = rest.find((p) => p.name === 'disconnect');
    if (d === undefined) throw new Error(`Client5: connection closed without a DISCONNECT (got [${rest.map(describe).join(', ')}])`);
    return d;
  }

  /** Reads the next PUBLISH and completes its QoS flow. */
  async receive(timeoutMs = WAIT_MS): Promise<Packet5> {
    const m = await this.expect('publish', timeoutMs);
    await this.ackPublish(m);
    return m;
  }

  /** Completes the QoS 1/2 flow of a received PUBLISH. */
  async ackPublish(m: Packet5): Promise<void> {
    if (m.qos === 1) this.send(P.puback(m.packetId));
    if (m.qos === 2) {
      this.send(P.pubrec(m.packetId));
      await this.expect('pubrel');
      this.send(P.pubcomp(m.packetId));
    }
  }

  /**
   * Publishes at QoS 2 and completes the flow (PUBREC, PUBREL, PUBCOMP): a
   * broker may forward on PUBLISH or only on PUBREL (mosquitto), so tests that
   * wait for delivery finish the flow first. Returns the PUBREC.
   */
  async publish2(o: Omit<Publish5Options, 'qos'> & { id: number }): Promise<Packet5> {
    this.send(publish({ ...o, qos: 2 }));
    const rec = await this.expect('pubrec');
    this.send(P.pubrel(o.id));
    await this.expect('pubcomp');
    return rec;
  }

  /** Subscribes (v5) and returns the SUBACK reason codes. */
  async sub(id: number, subs: ReadonlyArray<P.SubscriptionRequest | string>, properties: PropList = []): Promise<number[]> {
    this.send(subscribe(id, subs, properties));
    const suback = await this.expect('suback');
    if (suback.packetId !== id) throw new Error(`Client5: SUBACK id ${suback.packetId}, expected ${id}`);
    return suback.reasonCodes;
  }

  /** A round trip (PINGREQ/PINGRESP): everything the server sent before it has been read. */
  async sync(timeoutMs = WAIT_MS): Promise<Packet5[]> {
    this.send(P.pingreq());
    const before: Packet5[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = await this.next(Math.max(1, deadline - Date.now()), 'PINGRESP');
      if (p.name === 'pingresp') return before;
      before.push(p);
    }
  }

  #data(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let got = false;
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
      // [MQTT-1.5.5-1] the remaining length uses the fewest bytes possible.
      const minimal = len < 128 ? 2 : len < 16_384 ? 3 : len < 2_097_152 ? 4 : 5;
      if (i !== minimal) this.encodingErrors.push(`remaining length ${len} encoded in ${i - 1} bytes`);
      let p: Packet5;
      try {
        p = decode(buf[0] as number, buf.subarray(i, i + len), i + len);
      } catch (err) {
        this.encodingErrors.push(`undecodable packet type ${(buf[0] as number) >> 4}: ${(err as Error).message}`);
        p = decode(0, Buffer.alloc(0), i + len);
      }
      this.received.push(p);
      this.#queue.push(p);
      got = true;
      this.#buffer = buf.subarray(i + len);
    }
    if (got) this.#notify();
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  #changed(ms: number, message: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (ms <= 0) {
        reject(new Error(`Client5: ${message}`));
        return;
      }
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`Client5: ${message}`));
      }, ms);
      this.#waiters.add(waiter);
    });
  }
}

/** Resolves after `ms` (only for waiting out a protocol timer: an expiry, a will delay). */
export function elapse(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
