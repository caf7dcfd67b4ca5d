/**
 * Copy and serialisation helpers for persistence records.
 *
 * Copies are structural down to, but not including, Buffers: Buffers are
 * treated as immutable throughout Tern (see src/codec/types.ts), so sharing
 * them is safe and saves copying payloads.
 */
import type { Properties } from '../codec/types.js';
import type { OutboundEntry, SessionRecord, StoredMessage, StoredSubscription, StoredWill } from './types.js';
import { SESSION_NEVER_EXPIRES } from './types.js';

export function cloneProperties(p: Properties): Properties {
  const out: Properties = { ...p };
  if (p.userProperties !== undefined) out.userProperties = p.userProperties.map(copyPair);
  if (p.subscriptionIdentifiers !== undefined) out.subscriptionIdentifiers = p.subscriptionIdentifiers.slice();
  return out;
}

function copyPair(pair: [string, string]): [string, string] {
  return [pair[0], pair[1]];
}

export function cloneMessage(m: StoredMessage): StoredMessage {
  const out: StoredMessage = { ...m };
  if (m.properties !== undefined) out.properties = cloneProperties(m.properties);
  return out;
}

function cloneWill(w: StoredWill): StoredWill {
  const out: StoredWill = { ...w };
  if (w.properties !== undefined) out.properties = cloneProperties(w.properties);
  return out;
}

export function cloneSession(s: SessionRecord): SessionRecord {
  const out: SessionRecord = { ...s };
  if (s.will !== undefined) out.will = cloneWill(s.will);
  return out;
}

export function cloneSubscription(s: StoredSubscription): StoredSubscription {
  return { ...s };
}

export function cloneEntry(e: OutboundEntry): OutboundEntry {
  const out: OutboundEntry = { ...e };
  if (e.subscriptionIds !== undefined) out.subscriptionIds = e.subscriptionIds.slice();
  return out;
}

/**
 * Properties as JSON text. Buffers (correlation / authentication data) become
 * `{"$b":"<base64>"}`; no property value is an object with that shape, so the
 * tag cannot collide.
 */
export function propertiesToJson(p: Properties): string {
  return JSON.stringify(p, bufferReplacer);
}

export function propertiesFromJson(text: string): Properties {
  return JSON.parse(text, bufferReviver) as Properties;
}

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

/** When a session expires, ms since epoch; null while connected or when it never expires. */
export function sessionExpiresAt(s: SessionRecord): number | null {
  if (s.disconnectedAt === null || s.expiryInterval === SESSION_NEVER_EXPIRES) return null;
  return s.disconnectedAt + s.expiryInterval * 1000;
}
