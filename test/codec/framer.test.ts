/** Framer: stream splitting, zero-copy hand-out, size limit and varint limits. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Framer } from '../../src/codec/framer.js';
import { TernError } from '../../src/errors.js';
import { hex } from './fixtures.js';

interface Frame {
  header: number;
  body: string;
}

/** A stream mixing empty bodies, 1- and 2-byte remaining lengths. */
const PACKETS = [
  hex('c0 00'), // PINGREQ
  hex('30 07 00 03 61 2f 62 68 69'), // PUBLISH
  hex('30 80 01 00 01 74 61*125'), // PUBLISH, remaining length 128
  hex('40 02 00 01'), // PUBACK
  hex('e0 00'), // DISCONNECT
];
const STREAM = Buffer.concat(PACKETS);
const EXPECTED: Frame[] = PACKETS.map((p) => ({ header: p[0]!, body: p.subarray(p[1]! & 0x80 ? 3 : 2).toString('hex') }));

function feed(framer: Framer, chunks: Buffer[]): Frame[] {
  const out: Frame[] = [];
  for (const c of chunks) framer.push(c, (header, body) => out.push({ header, body: body.toString('hex') }));
  return out;
}

function splitAt(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

function expectTernError(fn: () => void, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof TernError && err.code === code);
}

describe('Framer', () => {
  it('delivers coalesced packets from one chunk in order', () => {
    const framer = new Framer({ maxPacketSize: 1024 });
    assert.deepEqual(feed(framer, [STREAM]), EXPECTED);
    assert.equal(framer.buffered, 0);
  });

  it('hands out subarrays of the chunk without copying when packets are whole', () => {
    const framer = new Framer({ maxPacketSize: 1024 });
    const chunk = Buffer.from(STREAM);
    const bodies: Buffer[] = [];
    framer.push(chunk, (_h, body) => bodies.push(body));
    assert.equal(bodies.length, PACKETS.length);
    for (const body of bodies) {
      assert.equal(body.buffer, chunk.buffer, 'shares the chunk memory');
      assert.ok(body.byteOffset >= chunk.byteOffset && body.byteOffset + body.length <= chunk.byteOffset + chunk.length);
    }
    chunk[6] = 0x7a; // proves aliasing: the first PUBLISH topic byte changes in the handed-out body
    assert.equal(bodies[1]![2], 0x7a);
  });

  it('reassembles packets for every split of the stream into two and three chunks', () => {
    for (let a = 0; a <= STREAM.length; a++) {
      assert.deepEqual(feed(new Framer({ maxPacketSize: 1024 }), splitAt(STREAM, [a])), EXPECTED, `cut ${a}`);
    }
    // Three chunks: every pair of cuts over the first 30 bytes (headers and small bodies).
    for (let a = 0; a <= 30; a++) {
      for (let b = a; b <= 30; b++) {
        assert.deepEqual(feed(new Framer({ maxPacketSize: 1024 }), splitAt(STREAM, [a, b])), EXPECTED, `cuts ${a},${b}`);
      }
    }
  });

  it('reassembles packets fed one byte at a time', () => {
    const framer = new Framer({ maxPacketSize: 1024 });
    const chunks = [...STREAM].map((b) => Buffer.from([b]));
    assert.deepEqual(feed(framer, chunks), EXPECTED);
    assert.equal(framer.buffered, 0);
  });

  it('reassembles packets in random chunkings', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 20 }), (cuts) => {
        assert.deepEqual(feed(new Framer({ maxPacketSize: 1024 }), splitAt(STREAM, cuts)), EXPECTED);
      }),
      { numRuns: 500 },
    );
  });

  it('reports buffered bytes of an incomplete packet', () => {
    const framer = new Framer({ maxPacketSize: 1024 });
    assert.deepEqual(feed(framer, [hex('30')]), []);
    assert.equal(framer.buffered, 1);
    assert.deepEqual(feed(framer, [hex('07 00 03')]), []);
    assert.equal(framer.buffered, 2, 'body bytes so far; the fixed header is not counted');
    assert.deepEqual(feed(framer, [hex('61 2f 62 68 69 c0')]), [{ header: 0x30, body: '0003612f626869' }]);
    assert.equal(framer.buffered, 1);
  });

  it('refuses an oversize packet from its fixed header, before buffering the body [MQTT 5.0 §3.1.2.11.4]', () => {
    const framer = new Framer({ maxPacketSize: 100 });
    // PUBLISH declaring remaining length 16383: 1 + 2 + 16383 bytes > 100.
    expectTernError(() => framer.push(hex('30 ff 7f'), () => assert.fail('no packet expected')), 'ERR_MQTT_PACKET_TOO_LARGE');
    assert.equal(framer.buffered, 0);
  });

  it('refuses an oversize packet whose header arrives byte by byte', () => {
    const framer = new Framer({ maxPacketSize: 100 });
    framer.push(hex('30'), () => assert.fail());
    framer.push(hex('ff'), () => assert.fail());
    expectTernError(() => framer.push(hex('7f 00 00'), () => assert.fail()), 'ERR_MQTT_PACKET_TOO_LARGE');
  });

  it('accepts a packet of exactly maxPacketSize and refuses one byte more', () => {
    // 1 header byte + 1 length byte + 8 body bytes = 10.
    const exact = hex('30 08 00 01 74 61*5');
    assert.equal(feed(new Framer({ maxPacketSize: 10 }), [exact]).length, 1);
    expectTernError(() => feed(new Framer({ maxPacketSize: 9 }), [exact]), 'ERR_MQTT_PACKET_TOO_LARGE');
  });

  it('refuses a remaining length with a fifth byte [MQTT-1.5.5]', () => {
    expectTernError(() => feed(new Framer({ maxPacketSize: 1 << 30 }), [hex('30 80 80 80 80 01')]), 'ERR_MQTT_MALFORMED');
    // Split: the error comes as soon as the 4th length byte still has its continuation bit.
    const framer = new Framer({ maxPacketSize: 1 << 30 });
    framer.push(hex('30 80 80'), () => assert.fail());
    expectTernError(() => framer.push(hex('80 80'), () => assert.fail()), 'ERR_MQTT_MALFORMED');
  });

  it('accepts the largest 4-byte remaining length and non-minimal encodings', () => {
    const framer = new Framer({ maxPacketSize: 1 << 30 });
    framer.push(hex('30 ff ff ff 7f'), () => assert.fail('body not complete'));
    assert.equal(framer.buffered, 0, 'nothing of the body has arrived yet');
    // 0x83 0x00 encodes 3 in two bytes: allowed to be accepted.
    assert.deepEqual(feed(new Framer({ maxPacketSize: 100 }), [hex('40 83 00 00 01 00')]), [{ header: 0x40, body: '000100' }]);
  });

  it('is dead after an error until reset', () => {
    const framer = new Framer({ maxPacketSize: 10 });
    expectTernError(() => framer.push(hex('30 7f'), () => assert.fail()), 'ERR_MQTT_PACKET_TOO_LARGE');
    assert.deepEqual(feed(framer, [hex('c0 00')]), [], 'input after an error is ignored');
    framer.reset();
    assert.deepEqual(feed(framer, [hex('c0 00')]), [{ header: 0xc0, body: '' }]);
  });

  it('is dead after onPacket throws', () => {
    const framer = new Framer({ maxPacketSize: 100 });
    assert.throws(() =>
      framer.push(hex('c0 00 d0 00'), () => {
        throw new Error('handler failed');
      }),
    );
    assert.deepEqual(feed(framer, [hex('c0 00')]), []);
  });

  it('stops delivering the current chunk when reset from inside onPacket', () => {
    const framer = new Framer({ maxPacketSize: 100 });
    const seen: number[] = [];
    framer.push(hex('c0 00 d0 00 e0 00'), (header) => {
      seen.push(header);
      framer.reset();
    });
    assert.deepEqual(seen, [0xc0]);
    assert.deepEqual(feed(framer, [hex('d0 00')]), [{ header: 0xd0, body: '' }]);
  });

  it('reset drops a partial packet', () => {
    const framer = new Framer({ maxPacketSize: 100 });
    feed(framer, [hex('30 07 00 03')]);
    assert.ok(framer.buffered > 0);
    framer.reset();
    assert.equal(framer.buffered, 0);
    assert.deepEqual(feed(framer, [hex('c0 00')]), [{ header: 0xc0, body: '' }]);
  });
});
