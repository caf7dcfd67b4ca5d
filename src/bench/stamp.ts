/**
 * Bench payload header, for end-to-end latency and per-publisher flow control:
 *
 *   bytes 0..3    magic 'TRNB'
 *   bytes 4..11   float64 LE send time, ms since the Unix epoch (sub-ms precision)
 *   bytes 12..15  uint32 LE index of the publisher within its bench process
 *
 * The time is epoch-based (performance.timeOrigin + performance.now()) so a
 * `tern bench sub` in another process on the same host can measure a
 * `tern bench pub`. Payloads shorter than STAMP_BYTES carry no header.
 */
import { performance } from 'node:perf_hooks';

export const STAMP_BYTES = 16;
const MAGIC = 0x54524e42; // 'TRNB'
const origin = performance.timeOrigin;

/** Now, in ms since the epoch with sub-millisecond resolution. */
export function nowMs(): number {
  return origin + performance.now();
}

/** A zeroed payload of `size` bytes with the header of publisher `index` (when it fits). */
export function makePayload(size: number, index: number): Buffer {
  const buf = Buffer.alloc(size);
  if (size >= STAMP_BYTES) {
    buf.writeUInt32BE(MAGIC, 0);
    buf.writeUInt32LE(index, 12);
  }
  return buf;
}

export function stamp(payload: Buffer, ms: number): void {
  if (payload.length >= STAMP_BYTES) payload.writeDoubleLE(ms, 4);
}

/** The send time in a stamped payload, or -1. */
export function readStamp(payload: Buffer): number {
  if (payload.length < STAMP_BYTES || payload.readUInt32BE(0) !== MAGIC) return -1;
  return payload.readDoubleLE(4);
}

/** The publisher index of a stamped payload (check readStamp first). */
export function readIndex(payload: Buffer): number {
  return payload.readUInt32LE(12);
}
