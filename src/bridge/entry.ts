/**
 * One message in the bridge's ordered pipeline (local -> remote). A class
 * with fixed fields so V8 keeps one shape for every message.
 *
 * `seq` is the pipeline position: assigned at ingest, strictly increasing,
 * the SQLite rowid of the cached row, and the only order the bridge knows
 * (never wall-clock time).
 */
import type { Properties, QoS } from '../codec/types.js';

export const Flag = {
  /** The message is meant to have a row in the cache (QoS > 0, or QoS 0 with cache_qos0). */
  ROW: 1,
  /** Its row is committed. */
  COMMITTED: 2,
  /** Handed to the remote client. */
  SENT: 4,
  /** The remote acknowledged it (PUBACK/PUBCOMP, or a QoS 0 write). */
  ACKED: 8,
  /** Dropped (evicted, rejected, expired, refused by the remote): never to be sent again. */
  DROPPED: 16,
  /** Waiting in the group-commit batch. */
  IN_BATCH: 32,
  /** The local broker still waits for our acknowledgement. */
  LOCAL_ACK: 64,
} as const;

export class Entry {
  seq: number;
  /** Topic at the remote (prefix applied). */
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  /** v5 properties to forward (JSON in the cache), or null. */
  readonly props: string | null;
  properties: Properties | undefined;
  /** Absolute expiry, ms since epoch; 0 = never. */
  readonly expiresAt: number;
  /** Bytes counted against the cache limits. */
  readonly size: number;
  flags: number;
  /** Local ack token: packetId | qos << 16 (0 = nothing to acknowledge). */
  readonly localToken: number;
  /** Local connection epoch the token belongs to. */
  readonly localEpoch: number;
  /** Remote acknowledgement callback, bound once when first sent. */
  onAck: ((err: Error | null) => void) | null = null;

  constructor(
    seq: number,
    topic: string,
    payload: Buffer,
    qos: QoS,
    retain: boolean,
    props: string | null,
    properties: Properties | undefined,
    expiresAt: number,
    flags: number,
    localToken: number,
    localEpoch: number,
  ) {
    this.seq = seq;
    this.topic = topic;
    this.payload = payload;
    this.qos = qos;
    this.retain = retain;
    this.props = props;
    this.properties = properties;
    this.expiresAt = expiresAt;
    this.size = Buffer.byteLength(topic) + payload.length + (props === null ? 0 : props.length);
    this.flags = flags;
    this.localToken = localToken;
    this.localEpoch = localEpoch;
  }
}
