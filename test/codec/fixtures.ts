/** Loader for test/fixtures/packets/*.json (format described in each file). */
import { readFileSync } from 'node:fs';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import type { Packet } from '../../src/codec/types.js';

export interface ValidCase {
  name: string;
  level: ProtocolLevel;
  bytes: Buffer;
  packet: Packet;
  decodeOnly: boolean;
  /** Why the mqtt-packet cross-check does not apply, if it does not. */
  mqttPacketSkip: string | undefined;
}

export interface InvalidCase {
  name: string;
  level: ProtocolLevel;
  bytes: Buffer;
  error: string;
}

/** "30 07 00 61*3" -> bytes; `XX*N` repeats byte XX N times. */
export function hex(text: string): Buffer {
  const out: number[] = [];
  for (const token of text.split(/\s+/)) {
    if (token === '') continue;
    const m = /^([0-9a-f]{2})(?:\*(\d+))?$/i.exec(token);
    if (!m) throw new Error(`bad hex token '${token}'`);
    const byte = Number.parseInt(m[1]!, 16);
    const count = m[2] === undefined ? 1 : Number(m[2]);
    for (let i = 0; i < count; i++) out.push(byte);
  }
  return Buffer.from(out);
}

function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.$hex === 'string' && Object.keys(o).length === 1) return hex(o.$hex);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) out[k] = revive(x);
    return out;
  }
  return v;
}

function load(name: string): Array<Record<string, unknown>> {
  const url = new URL(`../fixtures/packets/${name}`, import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { cases: Array<Record<string, unknown>> }).cases;
}

export function validCases(file: string): ValidCase[] {
  return load(file).map((c) => ({
    name: c.name as string,
    level: c.level as ProtocolLevel,
    bytes: hex(c.hex as string),
    packet: revive(c.packet) as Packet,
    decodeOnly: c.decodeOnly === true,
    mqttPacketSkip: c.mqttPacketSkip as string | undefined,
  }));
}

export function invalidCases(file: string): InvalidCase[] {
  return load(file).map((c) => ({
    name: c.name as string,
    level: c.level as ProtocolLevel,
    bytes: hex(c.hex as string),
    error: c.error as string,
  }));
}
