/**
 * Table-driven codec tests over hand-assembled bytes: each valid fixture is
 * decoded, encoded and cross-checked with mqtt-packet (an independent codec);
 * each invalid fixture must be refused with the listed TernError code.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Framer } from '../../src/codec/framer.js';
import { decodePacket } from '../../src/codec/decode.js';
import { encodePacket } from '../../src/codec/encode.js';
import { TernError } from '../../src/errors.js';
import type { Packet } from '../../src/codec/types.js';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import { invalidCases, validCases } from './fixtures.js';
import { fromMqtt, mqttParse } from './oracle.js';

function decodeStream(bytes: Buffer, level: ProtocolLevel): Packet[] {
  const framer = new Framer({ maxPacketSize: 1 << 20 });
  const out: Packet[] = [];
  framer.push(bytes, (header, body) => out.push(decodePacket(header, body, level)));
  assert.equal(framer.buffered, 0, 'fixture must hold whole packets');
  return out;
}

for (const file of ['v4.json', 'v5.json']) {
  describe(`packet fixtures ${file}`, () => {
    for (const c of validCases(file)) {
      it(`${c.name}: decodes to the expected packet`, () => {
        assert.deepEqual(decodeStream(c.bytes, c.level), [c.packet]);
      });
      if (!c.decodeOnly) {
        it(`${c.name}: encodes to the fixture bytes`, () => {
          assert.equal(encodePacket(c.packet, c.level).toString('hex'), c.bytes.toString('hex'));
        });
      }
      it(`${c.name}: mqtt-packet reads the same packet from the fixture bytes`, { skip: c.mqttPacketSkip }, () => {
        const parsed = mqttParse(c.bytes, c.level);
        assert.equal(parsed.length, 1);
        assert.deepEqual(fromMqtt(parsed[0]!, c.level), c.packet);
      });
    }
  });
}

describe('malformed packet fixtures', () => {
  for (const c of invalidCases('malformed.json')) {
    it(`${c.name}: refused with ${c.error}`, () => {
      assert.throws(
        () => decodeStream(c.bytes, c.level),
        (err: unknown) => {
          assert.ok(err instanceof TernError, `expected a TernError, got ${String(err)}`);
          assert.equal(err.code, c.error, err.message);
          return true;
        },
      );
    });
  }
});
