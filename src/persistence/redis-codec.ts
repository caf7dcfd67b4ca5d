/**
 * How RedisPersistence (redis.ts) turns records into Redis values and back.
 *
 * - Sessions and subscriptions: JSON text; Buffers (will payload, binary
 *   properties) become `{"$b":"<base64>"}` (no record field is an object of
 *   that shape, so the tag cannot collide).
 * - Messages: binary, `[u32 BE header length][header JSON][payload bytes]`,
 *   so payloads are stored raw (no base64 on the hot path). The header is
 *   `[id, topic, qos, retain 0|1, createdAt, expiresAt|null, properties|null]`.
 * - Outbound entries: `<messageId>|<state 0|1|2>|[qos, packetId|null,
 *   subscriptionIds|null, retain|null]`; the Lua scripts read the message id
 *   and state from the text before the JSON.
 * - Retained slots: `<messageId>|<payload bytes>`.
 *
 * Decoders return fresh objects and copy payloads out of reply buffers, so
 * callers own what they get (types.ts).
 */
import type { Properties, QoS } from '../codec/types.js';
import type { OutboundEntry, OutboundState, SessionRecord, StoredMessage, StoredSubscription } from './types.js';

export const STATE_CODE: Record<OutboundState, number> = { queued: 0, sent: 1, pubrel: 2 };
const STATE_NAME: readonly OutboundState[] = ['queued', 'sent', 'pubrel'];

function bufferReplacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  // `value` has already been through Buffer#toJSON; the holder still has the Buffer.
  const raw = this[key];
  return Buffer.isBuffer(raw) ? { $b: raw.toString('base64') } : value;
}

function bufferReviver(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const b = (value as { $b?: unknown }).$b;
    if (typeof b === 'string') return Buffer.from(b, 'base64');
  }
  return value;
}

export function encodeSession(s: SessionRecord): string {
  return JSON.stringify(s, bufferReplacer);
}

export function decodeSession(text: string | Buffer): SessionRecord {
  return JSON.parse(text.toString(), bufferReviver) as SessionRecord;
}

export function encodeSubscription(s: StoredSubscription): string {
  return JSON.stringify(s);
}

export function decodeSubscription(text: string | Buffer): StoredSubscription {
  return JSON.parse(text.toString()) as StoredSubscription;
}

type MessageHeader = [number, string, QoS, 0 | 1, number, number | null, Properties | null];

export function encodeMessage(m: StoredMessage): Buffer {
  const header: MessageHeader = [
    m.id,
    m.topic,
    m.qos,
    m.retain ? 1 : 0,
    m.createdAt,
    m.expiresAt ?? null,
    m.properties ?? null,
  ];
  const json = Buffer.from(m.properties === undefined ? JSON.stringify(header) : JSON.stringify(header, bufferReplacer));
  const out = Buffer.allocUnsafe(4 + json.length + m.payload.length);
  out.writeUInt32BE(json.length, 0);
  json.copy(out, 4);
  m.payload.copy(out, 4 + json.length);
  return out;
}

export function decodeMessage(blob: Buffer): StoredMessage {
  const len = blob.readUInt32BE(0);
  const h = JSON.parse(blob.toString('utf8', 4, 4 + len), bufferReviver) as MessageHeader;
  const m: StoredMessage = {
    id: h[0],
    topic: h[1],
    payload: Buffer.from(blob.subarray(4 + len)),
    qos: h[2],
    retain: h[3] === 1,
    createdAt: h[4],
  };
  if (h[6] !== null) m.properties = h[6];
  if (h[5] !== null) m.expiresAt = h[5];
  return m;
}

type EntryTail = [QoS, number | null, number[] | null, boolean | null];

export function encodeEntry(e: OutboundEntry): string {
  const tail: EntryTail = [e.qos, e.packetId ?? null, e.subscriptionIds ?? null, e.retain ?? null];
  return `${e.messageId}|${STATE_CODE[e.state]}|${JSON.stringify(tail)}`;
}

export function decodeEntry(seq: number, text: string): OutboundEntry {
  const bar1 = text.indexOf('|');
  const bar2 = text.indexOf('|', bar1 + 1);
  const tail = JSON.parse(text.slice(bar2 + 1)) as EntryTail;
  const e: OutboundEntry = {
    seq,
    messageId: Number(text.slice(0, bar1)),
    qos: tail[0],
    state: STATE_NAME[Number(text.slice(bar1 + 1, bar2))]!,
  };
  if (tail[1] !== null) e.packetId = tail[1];
  if (tail[2] !== null) e.subscriptionIds = tail[2];
  if (tail[3] !== null) e.retain = tail[3];
  return e;
}

/**
 * The literal part of a filter before its first wildcard, or null when it has
 * none. Before a `#` the trailing `/` is dropped: `a/#` also matches `a`.
 */
export function literalPrefix(filter: string): string | null {
  const plus = filter.indexOf('+');
  const hash = filter.indexOf('#');
  if (plus < 0 && hash < 0) return null;
  if (hash >= 0 && (plus < 0 || hash < plus)) {
    return hash > 0 ? filter.slice(0, hash - 1) : '';
  }
  return filter.slice(0, plus);
}
