/**
 * Streaming MQTT framer: splits a byte stream into (header, body) pairs.
 *
 *   byte 1      type << 4 | flags
 *   bytes 2..5  remaining length, a Variable Byte Integer of 1-4 bytes [MQTT-1.5.5]
 *   then        exactly `remaining length` body bytes
 *
 * Invariants:
 * - Packets wholly inside one chunk are handed out as `chunk.subarray()`, no
 *   copy. Only a packet split across chunks is copied, once, into a buffer of
 *   exactly its body size; there is no Buffer.concat per chunk.
 * - The declared size (1 + length bytes + remaining length) is checked against
 *   `maxPacketSize` as soon as the fixed header is complete, before any body
 *   byte is buffered [MQTT 5.0 §3.1.2.11.4, §3.2.2.3.6] (as rumqtt
 *   `protocol/v4/mod.rs::check` does).
 * - Bodies handed out are never reused by the framer: keeping them is safe as
 *   long as the transport does not reuse its chunks (node:net does not).
 * - After any error (its own or one thrown by `onPacket`) the framer is dead:
 *   `push` ignores input until `reset()`. The caller closes the connection.
 */
import { ternError, type TernError } from '../errors.js';
import { malformed } from './primitives.js';

export interface FramerOptions {
  /** Largest accepted packet in bytes, fixed header included (at most MAX_PACKET_SIZE). */
  maxPacketSize: number;
}

export type PacketCallback = (header: number, body: Buffer) => void;

export class Framer {
  readonly #maxPacketSize: number;
  /** Bytes of a fixed header split across chunks (at most 5). */
  readonly #head = Buffer.alloc(5);
  #headLen = 0;
  /** Body of a packet split across chunks, and how much of it has arrived. */
  #body: Buffer | null = null;
  #bodyFill = 0;
  /** Results of the last #readHeader. */
  #header = 0;
  #remaining = 0;
  /** Bumped by reset(), so a reset from inside onPacket stops the current push. */
  #epoch = 0;
  #dead = false;

  constructor(opts: FramerOptions) {
    this.#maxPacketSize = opts.maxPacketSize;
  }

  /** Bytes held for an incomplete packet. */
  get buffered(): number {
    return this.#headLen + this.#bodyFill;
  }

  /** Drop any partial packet and revive a dead framer. */
  reset(): void {
    this.#headLen = 0;
    this.#body = null;
    this.#bodyFill = 0;
    this.#epoch++;
    this.#dead = false;
  }

  /**
   * Feed one chunk; `onPacket` runs synchronously for every packet completed
   * by it. Throws ERR_MQTT_MALFORMED (remaining length over 4 bytes) or
   * ERR_MQTT_PACKET_TOO_LARGE, and rethrows whatever `onPacket` throws.
   */
  push(chunk: Buffer, onPacket: PacketCallback): void {
    if (this.#dead) return;
    try {
      this.#push(chunk, onPacket);
    } catch (err) {
      this.#dead = true;
      this.#body = null;
      this.#headLen = 0;
      this.#bodyFill = 0;
      throw err;
    }
  }

  #push(chunk: Buffer, onPacket: PacketCallback): void {
    const len = chunk.length;
    const epoch = this.#epoch;
    let off = 0;

    if (this.#body !== null) {
      // Continue a body split across chunks.
      const body = this.#body;
      const n = Math.min(body.length - this.#bodyFill, len);
      chunk.copy(body, this.#bodyFill, 0, n);
      this.#bodyFill += n;
      if (this.#bodyFill < body.length) return;
      off = n;
      this.#body = null;
      this.#bodyFill = 0;
      onPacket(this.#header, body);
      if (epoch !== this.#epoch) return;
    } else if (this.#headLen > 0) {
      // Complete a fixed header split across chunks; it is at most 5 bytes.
      const had = this.#headLen;
      const take = Math.min(5 - had, len);
      chunk.copy(this.#head, had, 0, take);
      const used = this.#readHeader(this.#head, 0, had + take);
      if (used === 0) {
        this.#headLen = had + take;
        return;
      }
      this.#headLen = 0;
      off = used - had;
      if (!this.#emitOrBuffer(chunk, off, onPacket)) return;
      off += this.#remaining;
      if (epoch !== this.#epoch) return;
    }

    while (off < len) {
      const used = this.#readHeader(chunk, off, len);
      if (used === 0) {
        chunk.copy(this.#head, 0, off, len);
        this.#headLen = len - off;
        return;
      }
      off += used;
      if (!this.#emitOrBuffer(chunk, off, onPacket)) return;
      off += this.#remaining;
      if (epoch !== this.#epoch) return;
    }
  }

  /** Hands out the body at `off` if the chunk holds all of it, else starts buffering it. */
  #emitOrBuffer(chunk: Buffer, off: number, onPacket: PacketCallback): boolean {
    const remaining = this.#remaining;
    const available = chunk.length - off;
    if (available >= remaining) {
      onPacket(this.#header, chunk.subarray(off, off + remaining));
      return true;
    }
    const body = Buffer.allocUnsafe(remaining);
    chunk.copy(body, 0, off);
    this.#body = body;
    this.#bodyFill = available;
    return false;
  }

  /**
   * Parse a fixed header from buf[start, end). Returns its length (2-5) and
   * sets #header/#remaining, or returns 0 if more bytes are needed.
   */
  #readHeader(buf: Buffer, start: number, end: number): number {
    let pos = start + 1;
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      if (pos >= end) return 0;
      const b = buf[pos++]!;
      value += (b & 0x7f) * mul;
      if (b < 0x80) {
        const size = pos - start + value;
        if (size > this.#maxPacketSize) throw tooLarge(size, this.#maxPacketSize);
        this.#header = buf[start]!;
        this.#remaining = value;
        return pos - start;
      }
      mul *= 128;
    }
    throw malformed('remaining length is longer than 4 bytes [MQTT-1.5.5]');
  }
}

function tooLarge(size: number, max: number): TernError {
  return ternError('ERR_MQTT_PACKET_TOO_LARGE', `declared size ${size} bytes exceeds the maximum of ${max}`);
}
