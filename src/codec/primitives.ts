/**
 * Wire primitives shared by every packet codec: a bounds-checked Reader over a
 * packet body, and offset-passing writers for a pre-sized output buffer.
 *
 * Invariants:
 * - A Reader never reads past `end`; every short read throws ERR_MQTT_MALFORMED.
 * - Writers never check bounds: callers size the buffer exactly from the
 *   matching *Length helper first (see packets/*.ts), so every byte is written.
 * - Decoded strings are validated UTF-8 without U+0000 [MQTT-1.5.4-1] [MQTT-1.5.4-2].
 */
import { isUtf8 } from 'node:buffer';
import { MAX_PACKET_SIZE, MAX_VARINT } from './constants.js';
import { ternError, type TernError } from '../errors.js';

export function malformed(detail: string): TernError {
  return ternError('ERR_MQTT_MALFORMED', detail);
}

export function protocolError(detail: string): TernError {
  return ternError('ERR_MQTT_PROTOCOL', detail);
}

/** A caller handed the encoder something that is not a valid packet. */
export function invalidPacket(detail: string): TernError {
  return ternError('ERR_CODEC_INVALID_PACKET', detail);
}

/**
 * Decode bytes [start, end) as an MQTT UTF-8 string. ASCII (the common case
 * for topics and client ids) is checked with a byte loop and sliced as latin1;
 * anything else goes through `isUtf8`, which rejects overlong forms and
 * surrogates [MQTT-1.5.4-1]. A 0x00 byte can only encode U+0000 [MQTT-1.5.4-2].
 */
export function decodeUtf8(buf: Buffer, start: number, end: number): string {
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    if (c === 0) throw malformed('UTF-8 string contains U+0000 [MQTT-1.5.4-2]');
    if (c > 0x7f) return decodeUtf8Slow(buf, i, start, end);
  }
  return buf.toString('latin1', start, end);
}

function decodeUtf8Slow(buf: Buffer, from: number, start: number, end: number): string {
  for (let i = from; i < end; i++) {
    if (buf[i] === 0) throw malformed('UTF-8 string contains U+0000 [MQTT-1.5.4-2]');
  }
  if (!isUtf8(buf.subarray(start, end))) throw malformed('ill-formed UTF-8 string [MQTT-1.5.4-1]');
  return buf.toString('utf8', start, end);
}

/** Bounds-checked cursor over one packet body. Reused field names keep it monomorphic. */
export class Reader {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;

  constructor(buf: Buffer, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  u8(what: string): number {
    if (this.pos >= this.end) throw malformed(`packet too short for ${what}`);
    return this.buf[this.pos++]!;
  }

  u16(what: string): number {
    const p = this.pos;
    if (p + 2 > this.end) throw malformed(`packet too short for ${what}`);
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(what: string): number {
    const p = this.pos;
    if (p + 4 > this.end) throw malformed(`packet too short for ${what}`);
    this.pos = p + 4;
    return this.buf.readUInt32BE(p);
  }

  /** Variable Byte Integer, at most 4 bytes [MQTT-1.5.5]; non-minimal forms are accepted. */
  varint(what: string): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      if (this.pos >= this.end) throw malformed(`packet too short for ${what}`);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * mul;
      if (b < 0x80) return value;
      mul *= 128;
    }
    throw malformed(`${what}: variable byte integer longer than 4 bytes`);
  }

  utf8(what: string): string {
    const p = this.pos;
    if (p + 2 > this.end) throw malformed(`packet too short for ${what}`);
    const start = p + 2;
    const stop = start + ((this.buf[p]! << 8) | this.buf[p + 1]!);
    if (stop > this.end) throw malformed(`${what} runs past the end of the packet`);
    this.pos = stop;
    return decodeUtf8(this.buf, start, stop);
  }

  /** Binary data with a 2-byte length; returns a view (no copy) into the body. */
  binary(what: string): Buffer {
    const p = this.pos;
    if (p + 2 > this.end) throw malformed(`packet too short for ${what}`);
    const start = p + 2;
    const stop = start + ((this.buf[p]! << 8) | this.buf[p + 1]!);
    if (stop > this.end) throw malformed(`${what} runs past the end of the packet`);
    this.pos = stop;
    return this.buf.subarray(start, stop);
  }

  packetId(what: string): number {
    const id = this.u16(what);
    // [MQTT-2.3.1-1] packets that carry an identifier carry a non-zero one.
    if (id === 0) throw protocolError(`${what} packet identifier is 0 [MQTT-2.3.1-1]`);
    return id;
  }

  /** Every byte of the remaining length must be consumed. */
  done(what: string): void {
    if (this.pos !== this.end) throw malformed(`${this.end - this.pos} unexpected trailing bytes in ${what}`);
  }
}

// ---------------------------------------------------------------------------
// Writers: `buf` is pre-sized; each returns the offset after what it wrote.

export function varintLength(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

export function writeVarint(buf: Buffer, off: number, n: number): number {
  while (n >= 128) {
    buf[off++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[off++] = n;
  return off;
}

export function writeU16(buf: Buffer, off: number, n: number): number {
  buf[off] = n >>> 8;
  buf[off + 1] = n & 0xff;
  return off + 2;
}

export function writeU32(buf: Buffer, off: number, n: number): number {
  buf.writeUInt32BE(n, off);
  return off + 4;
}

/** Encoded size of a UTF-8 string without its 2-byte length prefix; throws if it cannot fit. */
export function utf8Length(s: string, what: string): number {
  if (typeof s !== 'string') throw invalidPacket(`${what} must be a string`);
  const n = Buffer.byteLength(s, 'utf8');
  if (n > 0xffff) throw invalidPacket(`${what} is ${n} bytes, more than 65535`);
  return n;
}

export function binaryLength(b: Buffer, what: string): number {
  if (!Buffer.isBuffer(b)) throw invalidPacket(`${what} must be a Buffer`);
  if (b.length > 0xffff) throw invalidPacket(`${what} is ${b.length} bytes, more than 65535`);
  return b.length;
}

/** Writes the 2-byte length then the string; `byteLen` comes from utf8Length. */
export function writeUtf8(buf: Buffer, off: number, s: string, byteLen: number): number {
  buf[off] = byteLen >>> 8;
  buf[off + 1] = byteLen & 0xff;
  // Equal lengths mean pure ASCII, where latin1 writes the same bytes faster.
  buf.write(s, off + 2, byteLen, byteLen === s.length ? 'latin1' : 'utf8');
  return off + 2 + byteLen;
}

export function writeBinary(buf: Buffer, off: number, b: Buffer): number {
  buf[off] = b.length >>> 8;
  buf[off + 1] = b.length & 0xff;
  b.copy(buf, off + 2);
  return off + 2 + b.length;
}

/**
 * Allocate a whole packet and write its fixed header. The body starts at
 * `buf.length - remaining`. Every byte after the header must then be written
 * by the caller (the buffer comes from the unsafe pool).
 */
export function allocPacket(header: number, remaining: number): Buffer {
  if (remaining > MAX_VARINT) {
    throw ternError('ERR_MQTT_PACKET_TOO_LARGE', `${remaining + 5} bytes exceeds ${MAX_PACKET_SIZE}`);
  }
  const buf = Buffer.allocUnsafe(1 + varintLength(remaining) + remaining);
  buf[0] = header;
  writeVarint(buf, 1, remaining);
  return buf;
}
