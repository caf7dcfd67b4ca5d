/** Encoder behaviour beyond the fixtures: fan-out stamping, version rules, refusing invalid objects. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import type { Packet, PublishPacket } from '../../src/codec/types.js';
import { encodePacket } from '../../src/codec/encode.js';
import { decodePacket } from '../../src/codec/decode.js';
import { encodePublishShared, stampPacketId } from '../../src/codec/publish.js';
import { Framer } from '../../src/codec/framer.js';
import { TernError } from '../../src/errors.js';
import { publishArb } from './arbitraries.js';
import { normalize } from './oracle.js';

function decodeOne(bytes: Buffer, level: ProtocolLevel): Packet {
  const out: Packet[] = [];
  new Framer({ maxPacketSize: 1 << 20 }).push(bytes, (h, b) => out.push(decodePacket(h, b, level)));
  assert.equal(out.length, 1);
  return out[0]!;
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof TernError && err.code === code);
}

const publish = (over: Partial<PublishPacket> = {}): PublishPacket => ({
  type: 'publish',
  topic: 'a/b',
  payload: Buffer.from('hello'),
  qos: 1,
  retain: false,
  dup: false,
  packetId: 1,
  ...over,
});

describe('encodePublishShared + stampPacketId', () => {
  it('stamps a copy with the packet id and DUP, leaving the shared buffer untouched', () => {
    const enc = encodePublishShared(publish({ qos: 2, retain: true, packetId: 999, dup: true }), 5);
    const before = Buffer.from(enc.buffer);
    assert.equal(enc.buffer.readUInt16BE(enc.packetIdOffset), 0, 'placeholder id is 0');
    assert.equal(enc.buffer[0]! & 0x08, 0, 'shared buffer has DUP clear');

    const a = stampPacketId(enc, 0x1234, false);
    const b = stampPacketId(enc, 7, true);
    assert.deepEqual(enc.buffer, before, 'shared buffer unchanged');
    assert.deepEqual(decodeOne(a, 5), { ...publish({ qos: 2, retain: true, packetId: 0x1234 }), dup: false });
    assert.deepEqual(decodeOne(b, 5), { ...publish({ qos: 2, retain: true, packetId: 7 }), dup: true });
    a[a.length - 1] = 0; // writing into a stamped copy does not reach the shared bytes
    assert.deepEqual(enc.buffer, before);
  });

  it('stamped packets equal a direct encode for random publishes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<ProtocolLevel>(4, 5).chain((l) => fc.tuple(fc.constant(l), publishArb(l, 300))),
        fc.integer({ min: 1, max: 0xffff }),
        fc.boolean(),
        ([level, p], id, dup) => {
          const enc = encodePublishShared(p, level);
          if (p.qos === 0) {
            assert.equal(enc.packetIdOffset, -1);
            assert.deepEqual(enc.buffer, encodePacket(p, level));
            return;
          }
          const direct = encodePacket({ ...p, packetId: id, dup }, level);
          assert.deepEqual(stampPacketId(enc, id, dup), direct);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('has no packet id to stamp on QoS 0', () => {
    const enc = encodePublishShared(publish({ qos: 0, packetId: undefined }), 4);
    assert.equal(enc.packetIdOffset, -1);
    expectCode(() => stampPacketId(enc, 1, false), 'ERR_CODEC_INVALID_PACKET');
  });

  it('refuses packet id 0 or above 65535 when stamping [MQTT-2.3.1-1]', () => {
    const enc = encodePublishShared(publish(), 4);
    expectCode(() => stampPacketId(enc, 0, false), 'ERR_CODEC_INVALID_PACKET');
    expectCode(() => stampPacketId(enc, 65536, false), 'ERR_CODEC_INVALID_PACKET');
  });
});

describe('encodePacket version rules', () => {
  it('leaves properties and reason codes out for 3.1.1', () => {
    const p: Packet = { type: 'puback', packetId: 5, reasonCode: 0x10, properties: { reasonString: 'x' } };
    assert.equal(encodePacket(p, 4).toString('hex'), '40020005');
    assert.equal(encodePacket({ type: 'disconnect', reasonCode: 0x8b }, 4).toString('hex'), 'e000');
    assert.equal(
      encodePacket(publish({ qos: 0, packetId: undefined, properties: { contentType: 'x' } }), 4).toString('hex'),
      '300a0003612f6268656c6c6f',
    );
  });

  it('sends any SUBACK failure code as 0x80 in 3.1.1 [MQTT-3.9.3-2]', () => {
    const bytes = encodePacket({ type: 'suback', packetId: 1, reasonCodes: [0, 0x87, 2, 0x8f] }, 4);
    assert.equal(bytes.toString('hex'), '9006000100800280');
  });

  it('takes the CONNECT protocol name and level from the packet, not the argument', () => {
    const p: Packet = { type: 'connect', protocolName: 'MQTT', protocolLevel: 5, clean: true, keepalive: 0, clientId: '' };
    assert.deepEqual(encodePacket(p, 4), encodePacket(p, 5));
    assert.equal(encodePacket(p, 3)[8], 5);
  });

  it('skips properties the packet type does not allow', () => {
    const withExtra = encodePacket(
      publish({ properties: { sessionExpiryInterval: 10, contentType: 'c', reasonString: 'r' } }),
      5,
    );
    assert.deepEqual(withExtra, encodePacket(publish({ properties: { contentType: 'c' } }), 5));
  });

  it('writes the shortest 5.0 ack form [MQTT 5.0 §3.4.2.1]', () => {
    assert.equal(encodePacket({ type: 'pubrec', packetId: 1 }, 5).toString('hex'), '50020001');
    assert.equal(encodePacket({ type: 'pubrec', packetId: 1, reasonCode: 0x10 }, 5).toString('hex'), '5003000110');
  });

  it('uses a multi-byte remaining length for large packets', () => {
    const big = publish({ qos: 0, packetId: undefined, payload: Buffer.alloc(200_000, 7) });
    const bytes = encodePacket(big, 4);
    assert.equal(bytes.length, 1 + 3 + 2 + 3 + 200_000);
    assert.deepEqual(decodeOne(bytes, 4), normalize(big, 4));
  });
});

describe('encodePacket refuses objects that are not valid packets', () => {
  const cases: Array<[string, Packet, ProtocolLevel]> = [
    ['PUBLISH QoS 1 without packet id', publish({ packetId: undefined }), 4],
    ['PUBLISH packet id 0', publish({ packetId: 0 }), 4],
    ['PUBLISH QoS 3', publish({ qos: 3 as 1 }), 4],
    ['PUBLISH DUP on QoS 0 [MQTT-3.3.1-2]', publish({ qos: 0, dup: true }), 4],
    ['PUBLISH topic over 65535 bytes', publish({ topic: 'x'.repeat(65536) }), 4],
    ['PUBLISH payload not a Buffer', publish({ payload: 'text' as unknown as Buffer }), 4],
    ['AUTH before 5.0', { type: 'auth', reasonCode: 0 }, 4],
    ['SUBSCRIBE without filters [MQTT-3.8.3-3]', { type: 'subscribe', packetId: 1, subscriptions: [] }, 4],
    ['UNSUBSCRIBE without filters [MQTT-3.10.3-2]', { type: 'unsubscribe', packetId: 1, filters: [] }, 5],
    ['SUBACK without codes', { type: 'suback', packetId: 1, reasonCodes: [] }, 5],
    ['PUBACK packet id 70000', { type: 'puback', packetId: 70_000 }, 4],
    [
      'CONNECT 3.1.1 password without user name [MQTT-3.1.2-22]',
      { type: 'connect', protocolName: 'MQTT', protocolLevel: 4, clean: true, keepalive: 0, clientId: 'c', password: Buffer.from('p') },
      4,
    ],
    [
      'SUBSCRIBE with two subscription identifiers',
      {
        type: 'subscribe',
        packetId: 1,
        subscriptions: [{ filter: 'a', qos: 0, noLocal: false, retainAsPublished: false, retainHandling: 0 }],
        properties: { subscriptionIdentifiers: [1, 2] },
      },
      5,
    ],
    ['property value out of range', publish({ properties: { topicAlias: 70_000 } }), 5],
  ];
  for (const [name, packet, level] of cases) {
    it(name, () => expectCode(() => encodePacket(packet, level), 'ERR_CODEC_INVALID_PACKET'));
  }
});

describe('decodePacket and CONNECT', () => {
  it('reads the protocol level from the CONNECT itself, ignoring the level argument', () => {
    const p: Packet = {
      type: 'connect',
      protocolName: 'MQTT',
      protocolLevel: 5,
      clean: true,
      keepalive: 10,
      clientId: 'x',
      properties: { sessionExpiryInterval: 30 },
    };
    const bytes = encodePacket(p, 5);
    assert.deepEqual(decodePacket(bytes[0]!, bytes.subarray(2), 4), p);
    assert.deepEqual(decodePacket(bytes[0]!, bytes.subarray(2), 3), p);
  });
});
