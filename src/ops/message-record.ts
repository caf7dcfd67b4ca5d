/**
 * The one row shape every message-logging sink writes (NDJSON lines and
 * BigQuery rows alike; docs/operations.md documents it as the table schema).
 * Built when the message is taken in, so a sink never holds on to a payload
 * that may be a view into a socket buffer.
 */
import { isUtf8 } from 'node:buffer';
import type { Message } from '../broker/message.js';

export interface MessageRecord {
  /** When the broker took the message in, ISO 8601 (UTC). */
  ts: string;
  topic: string;
  qos: number;
  retain: boolean;
  /** Publishing client; null for messages the broker itself published. */
  client_id: string | null;
  /** The payload as UTF-8 text when it is valid UTF-8, else base64. */
  payload: string;
  payload_encoding: 'utf8' | 'base64';
  payload_bytes: number;
  /** MQTT 5 content type, when the publisher set one. */
  content_type: string | null;
}

/** A payload as JSON-friendly text: UTF-8 when valid, base64 otherwise. */
export function encodePayload(payload: Buffer): { payload: string; payload_encoding: 'utf8' | 'base64' } {
  return isUtf8(payload)
    ? { payload: payload.toString('utf8'), payload_encoding: 'utf8' }
    : { payload: payload.toString('base64'), payload_encoding: 'base64' };
}

export function toRecord(message: Message, clientId: string | undefined, now: number = Date.now()): MessageRecord {
  const { payload, payload_encoding } = encodePayload(message.payload);
  return {
    ts: new Date(now).toISOString(),
    topic: message.topic,
    qos: message.qos,
    retain: message.retain,
    client_id: clientId ?? null,
    payload,
    payload_encoding,
    payload_bytes: message.payload.length,
    content_type: message.properties?.contentType ?? null,
  };
}
