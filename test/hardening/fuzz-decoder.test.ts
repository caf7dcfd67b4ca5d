/**
 * A million mutated inputs through the framer and decoder, for both protocol
 * levels and every packet type: each input may only ever produce packets or a
 * TernError — no other exception, no hang, no allocation beyond the packet
 * size limit. Seeds are the hand-written fixture corpus in
 * test/fixtures/packets/. Runs: FUZZ_RUNS (default 1,000,000); seed: FUZZ_SEED.
 * Longer runs: `FUZZ_RUNS=50000000 npm test -- test/hardening/fuzz-decoder.test.ts`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import { decodePacket } from '../../src/codec/decode.js';
import { Framer } from '../../src/codec/framer.js';
import { TernError } from '../../src/errors.js';
import { invalidCases, validCases } from '../codec/fixtures.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000_000);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 0x7fffffff);
const MAX_PACKET = 64 * 1024;

/** xorshift32: fast, deterministic from FUZZ_SEED so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

test(`${RUNS} mutated packets yield only packets or TernErrors (seed ${SEED})`, { timeout: 600_000 }, (t) => {
  const seeds: Array<{ level: ProtocolLevel; bytes: Buffer }> = [];
  for (const file of ['v4.json', 'v5.json']) for (const c of validCases(file)) seeds.push({ level: c.level, bytes: c.bytes });
  for (const c of invalidCases('malformed.json')) seeds.push({ level: c.level, bytes: c.bytes });
  assert.ok(seeds.length > 50, 'seed corpus present');

  const next = rng(SEED);
  const framer = new Framer({ maxPacketSize: MAX_PACKET });
  let level: ProtocolLevel = 4;
  let packets = 0;
  let errors = 0;
  const onPacket = (header: number, body: Buffer): void => {
    decodePacket(header, body, level);
    packets++;
  };
  const scratch = Buffer.alloc(4096);
  const started = Date.now();

  for (let run = 0; run < RUNS; run++) {
    const seed = seeds[next() % seeds.length]!;
    level = seed.level;
    let len = Math.min(seed.bytes.length, scratch.length);
    seed.bytes.copy(scratch, 0, 0, len);
    // 1-4 mutations per input.
    for (let m = 1 + (next() & 3); m > 0; m--) {
      const op = next() % 8;
      const at = len === 0 ? 0 : next() % len;
      if (op === 0 && len > 0) scratch[at] = scratch[at]! ^ (1 << (next() & 7)); // bit flip
      else if (op === 1 && len > 0) scratch[at] = next() & 0xff; // random byte
      else if (op === 2 && len > 1) len = 1 + (next() % len); // truncate
      else if (op === 3 && len + 8 < scratch.length) {
        // insert random bytes
        const n = 1 + (next() & 7);
        scratch.copy(scratch, at + n, at, len);
        for (let i = 0; i < n; i++) scratch[at + i] = next() & 0xff;
        len += n;
      } else if (op === 4 && len > 2) {
        // delete a byte
        scratch.copy(scratch, at, at + 1, len);
        len--;
      } else if (op === 5 && len > 1) scratch[1] = next() & 0xff; // lie about the remaining length
      else if (op === 6 && len > 0) scratch[0] = (scratch[0]! & 0xf0) | (next() & 0x0f); // fixed-header flags
      else if (op === 7 && len > 0) scratch[0] = (next() & 0xf0) | (scratch[0]! & 0x0f); // packet type
    }
    const input = scratch.subarray(0, len);
    try {
      // Every 16th input goes in two chunks, to exercise the framer's buffering.
      if ((run & 15) === 0 && len > 2) {
        const cut = 1 + (next() % (len - 1));
        framer.push(input.subarray(0, cut), onPacket);
        framer.push(input.subarray(cut), onPacket);
      } else {
        framer.push(input, onPacket);
      }
      // Whatever the framer kept (a partial packet) is dropped before the next input.
      if (framer.buffered > MAX_PACKET) assert.fail(`framer buffered ${framer.buffered} bytes`);
      framer.reset();
    } catch (err) {
      if (!(err instanceof TernError)) {
        assert.fail(`non-TernError ${String(err)} for level ${level} input ${input.toString('hex')} (seed ${SEED}, run ${run})`);
      }
      errors++;
      framer.reset();
    }
  }
  const seconds = (Date.now() - started) / 1000;
  t.diagnostic(`fuzz: ${RUNS} inputs in ${seconds.toFixed(1)} s (${Math.round(RUNS / seconds)}/s), ${packets} packets, ${errors} typed errors, seed ${SEED}`);
  assert.ok(packets > 0 && errors > 0, 'the mutations produced both valid packets and errors');
});
