/**
 * Hostile input: random and mutated byte streams fed through Framer +
 * decodePacket in random chunkings must only ever yield packets or
 * TernErrors; never another exception type, never a hang.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import type { Packet } from '../../src/codec/types.js';
import { Framer } from '../../src/codec/framer.js';
import { decodeConnect, decodePacket } from '../../src/codec/decode.js';
import { encodePacket } from '../../src/codec/encode.js';
import { TernError } from '../../src/errors.js';
import { packetArb } from './arbitraries.js';
import { normalize } from './oracle.js';

const CODES = new Set([
  'ERR_MQTT_MALFORMED',
  'ERR_MQTT_PROTOCOL',
  'ERR_MQTT_UNSUPPORTED_PROTOCOL',
  'ERR_MQTT_PACKET_TOO_LARGE',
]);

interface Outcome {
  packets: Packet[];
  error: TernError | undefined;
}

/** Feed `stream` in chunks of the given sizes (cycled); stop at the first error. */
function run(stream: Buffer, chunkSizes: number[], level: ProtocolLevel, maxPacketSize = 4096): Outcome {
  const framer = new Framer({ maxPacketSize });
  const packets: Packet[] = [];
  let off = 0;
  let i = 0;
  try {
    while (off < stream.length) {
      const size = chunkSizes.length === 0 ? stream.length : chunkSizes[i++ % chunkSizes.length]!;
      framer.push(stream.subarray(off, off + size), (h, b) => packets.push(decodePacket(h, b, level)));
      off += size;
    }
  } catch (err) {
    if (!(err instanceof TernError)) throw new Error(`non-TernError escaped: ${String(err)}`, { cause: err });
    assert.ok(CODES.has(err.code), `unexpected code ${err.code}`);
    assert.ok(typeof err.reasonCode === 'number' && err.reasonCode >= 0x80, 'carries an MQTT 5 reason code');
    return { packets, error: err };
  }
  return { packets, error: undefined };
}

const level = fc.constantFrom<ProtocolLevel>(4, 5);
const chunks = fc.array(fc.integer({ min: 1, max: 24 }), { maxLength: 8 });

type Mutation =
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let buf = Buffer.from(input);
  for (const m of mutations) {
    if (buf.length === 0) break;
    const at = m.at % buf.length;
    if (m.kind === 'flip') buf[at]! ^= m.mask;
    else if (m.kind === 'set') buf[at] = m.value;
    else if (m.kind === 'truncate') buf = buf.subarray(0, at);
    else buf = Buffer.concat([buf.subarray(0, at), m.bytes, buf.subarray(at)]);
  }
  return buf;
}

describe('hostile byte streams', () => {
  it('valid packets in random chunkings decode back to the same packets', () => {
    fc.assert(
      fc.property(
        level.chain((l) => fc.tuple(fc.constant(l), fc.array(packetArb(l), { minLength: 1, maxLength: 6 }))),
        chunks,
        ([l, packets], sizes) => {
          const stream = Buffer.concat(packets.map((p) => encodePacket(p, l)));
          const out = run(stream, sizes, l, 1 << 20);
          assert.equal(out.error, undefined);
          assert.deepEqual(
            out.packets,
            packets.map((p) => normalize(p, l)),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it('mutated valid streams yield only packets or TernErrors', () => {
    fc.assert(
      fc.property(
        level.chain((l) => fc.tuple(fc.constant(l), fc.array(packetArb(l), { minLength: 1, maxLength: 4 }))),
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        chunks,
        ([l, packets], mutations, sizes) => {
          const stream = mutate(Buffer.concat(packets.map((p) => encodePacket(p, l))), mutations);
          run(stream, sizes, l);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('random bytes yield only packets or TernErrors', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), chunks, level, (bytes, sizes, l) => {
        run(Buffer.from(bytes), sizes, l, 256);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodePacket on any header byte and random body throws only TernErrors', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 }), level, (header, body, l) => {
        try {
          decodePacket(header, Buffer.from(body), l);
        } catch (err) {
          assert.ok(err instanceof TernError, `non-TernError: ${String(err)}`);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decodeConnect on a mutated CONNECT throws only TernErrors', () => {
    const base = encodePacket(
      {
        type: 'connect',
        protocolName: 'MQTT',
        protocolLevel: 5,
        clean: true,
        keepalive: 30,
        clientId: 'dev-1',
        will: { topic: 'w', payload: Buffer.from('x'), qos: 1, retain: false, properties: { willDelayInterval: 5 } },
        username: 'u',
        password: Buffer.from('p'),
        properties: { sessionExpiryInterval: 60, userProperties: [['a', 'b']] },
      },
      5,
    ).subarray(2);
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        try {
          decodeConnect(mutate(base, mutations));
        } catch (err) {
          assert.ok(err instanceof TernError, `non-TernError: ${String(err)}`);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
