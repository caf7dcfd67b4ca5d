/**
 * Codec throughput: encode and decode of MQTT 3.1.1 and 5.0 PUBLISH packets
 * with 64 B and 1 KiB payloads, Tern against mqtt-packet in the same process.
 *
 *   node --import tsx bench/codec.bench.ts        # BENCH_MS=<ms per case>, default 400
 *
 * Prints one JSON line per case: {bench, impl, op, level, qos, payload, opsPerSec, ...}.
 * "decode" includes framing for both: Tern's Framer + decodePacket, and
 * mqtt-packet's parser.parse, each fed one whole packet per chunk;
 * "decode-body" is Tern's decodePacket alone on an already framed body.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import mqtt from 'mqtt-packet';
import type { ProtocolLevel } from '../src/codec/constants.js';
import type { PublishPacket } from '../src/codec/types.js';
import { Framer } from '../src/codec/framer.js';
import { decodePacket } from '../src/codec/decode.js';
import { encodePacket } from '../src/codec/encode.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 400);

function gitSha(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

const META = {
  sha: gitSha(),
  node: process.version,
  cpu: os.cpus()[0]?.model ?? 'unknown',
};

let sink = 0;

/** Runs `fn` in batches until DURATION_MS has passed (after a warm-up) and returns ops/s. */
function measure(fn: () => number): number {
  const batch = 1000;
  const warmUntil = performance.now() + Math.min(200, DURATION_MS / 2);
  while (performance.now() < warmUntil) for (let i = 0; i < batch; i++) sink += fn();
  let ops = 0;
  const start = performance.now();
  let now = start;
  while (now - start < DURATION_MS) {
    for (let i = 0; i < batch; i++) sink += fn();
    ops += batch;
    now = performance.now();
  }
  return Math.round((ops * 1000) / (now - start));
}

function report(impl: string, op: string, level: ProtocolLevel, payload: number, opsPerSec: number): void {
  process.stdout.write(
    `${JSON.stringify({ bench: 'codec', impl, op, level, qos: 0, payload, opsPerSec, ...META })}\n`,
  );
}

const TOPIC = 'sensors/building-1/floor-2/temperature';

for (const level of [4, 5] as const) {
  for (const size of [64, 1024]) {
    const packet: PublishPacket = {
      type: 'publish',
      topic: TOPIC,
      payload: Buffer.alloc(size, 0x61),
      qos: 0,
      retain: false,
      dup: false,
    };
    const theirPacket = { cmd: 'publish' as const, topic: TOPIC, payload: packet.payload, qos: 0 as const, retain: false, dup: false };
    const opts = { protocolVersion: level };
    const bytes = encodePacket(packet, level);
    if (!bytes.equals(mqtt.generate(theirPacket, opts))) throw new Error('encoders disagree; benchmark invalid');

    report('tern', 'encode', level, size, measure(() => encodePacket(packet, level).length));
    report('mqtt-packet', 'encode', level, size, measure(() => mqtt.generate(theirPacket, opts).length));

    const framer = new Framer({ maxPacketSize: 1 << 20 });
    let decoded = 0;
    const onPacket = (header: number, body: Buffer): void => {
      if (decodePacket(header, body, level).type === 'publish') decoded++;
    };
    report(
      'tern',
      'decode',
      level,
      size,
      measure(() => {
        framer.push(bytes, onPacket);
        return decoded;
      }),
    );
    // The body alone: topic length + topic + (v5 property length) + payload.
    const body = bytes.subarray(bytes.length - (2 + TOPIC.length + (level === 5 ? 1 : 0) + size));
    report('tern', 'decode-body', level, size, measure(() => (decodePacket(bytes[0]!, body, level).type === 'publish' ? 1 : 0)));

    const parser = mqtt.parser(opts);
    let theirs = 0;
    parser.on('packet', () => {
      theirs++;
    });
    report(
      'mqtt-packet',
      'decode',
      level,
      size,
      measure(() => {
        parser.parse(bytes);
        return theirs;
      }),
    );
  }
}

if (sink === -1) process.stdout.write('\n'); // keep `sink` observable
