/**
 * Client options and their defaults. `resolveOptions` validates once, up
 * front, so the connection code never re-checks a value (P7).
 */
import { randomBytes } from 'node:crypto';
import { MAX_PACKET_SIZE } from '../codec/constants.js';
import type { Properties, Will } from '../codec/types.js';
import { ternError } from '../errors.js';

export interface TlsOptions {
  /** Trusted CA certificates (PEM); Node's default store when absent. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Client certificate and key (PEM) for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Client certificate and key as PKCS#12 (instead of cert/key). */
  pfx?: Buffer;
  /** Passphrase of an encrypted key or of `pfx`. */
  passphrase?: string;
  /** Verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  /** SNI name and the name checked against the certificate (default: host, unless an IP). */
  servername?: string;
}

export interface ReconnectOptions {
  /** First retry delay (default 500 ms). */
  minDelayMs?: number;
  /** Cap on the delay (default 30 s). */
  maxDelayMs?: number;
  /** Growth per failed attempt (default 2). */
  factor?: number;
  /** Fraction of the delay randomised away, 0..1 (default 0.5): delay * (1 - jitter * random). */
  jitter?: number;
}

export interface ClientOptions {
  host?: string;
  /** Default 1883, or 8883 with `tls`. */
  port?: number;
  /** Connect over TLS; `true` uses the defaults of TlsOptions. */
  tls?: boolean | TlsOptions;
  /** 4 = MQTT 3.1.1, 5 = MQTT 5.0 (default 4). */
  protocolLevel?: 4 | 5;
  /** Default `tern-` + 8 random hex digits; '' lets a v5 server assign one. */
  clientId?: string;
  /** Clean session (3.1.1) / clean start (5.0), default true. */
  clean?: boolean;
  /** Keep-alive in seconds, 0 disables (default 60). A v5 Server Keep Alive overrides it. */
  keepalive?: number;
  /** How long to wait for PINGRESP before closing (default: the keep-alive period). */
  pingTimeoutMs?: number;
  username?: string;
  password?: string | Buffer;
  will?: Will;
  /** v5 CONNECT properties (session expiry interval, receive maximum, ...). */
  properties?: Properties;
  /** TCP/TLS connect + CONNACK deadline (default 30 s). */
  connectTimeoutMs?: number;
  /**
   * Close the connection (and reconnect, if enabled) when the oldest
   * unacknowledged PUBLISH/SUBSCRIBE waits longer than this: it detects
   * half-open links between keep-alive probes. 0 disables (default).
   */
  ackTimeoutMs?: number;
  /** Reconnect after a connection loss (not after a failed first connect). Default false. */
  reconnect?: boolean | ReconnectOptions;
  /** Own cap on unacknowledged QoS 1/2 PUBLISH; the server's Receive Maximum caps it further (default 65535). */
  maxInflight?: number;
  /** Largest inbound packet accepted (default: the protocol maximum). */
  maxPacketSize?: number;
  /**
   * Do not acknowledge inbound QoS 1/2 PUBLISH automatically: the caller
   * calls `ack(packetId, qos)` once it has taken responsibility for the
   * message (the bridge's ack chain). Default false.
   */
  manualAcks?: boolean;
}

export interface ResolvedReconnect {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  readonly jitter: number;
}

export interface ResolvedOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsOptions | null;
  readonly protocolLevel: 4 | 5;
  readonly clientId: string;
  readonly clean: boolean;
  readonly keepalive: number;
  readonly pingTimeoutMs: number;
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly will: Will | undefined;
  readonly properties: Properties | undefined;
  readonly connectTimeoutMs: number;
  readonly ackTimeoutMs: number;
  readonly reconnect: ResolvedReconnect | null;
  readonly maxInflight: number;
  readonly maxPacketSize: number;
  readonly manualAcks: boolean;
}

function int(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw ternError('ERR_CLIENT_OPTIONS', `${name} must be an integer in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function num(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw ternError('ERR_CLIENT_OPTIONS', `${name} must be a number in ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function resolveReconnect(r: boolean | ReconnectOptions | undefined): ResolvedReconnect | null {
  if (r === undefined || r === false) return null;
  const o = r === true ? {} : r;
  const minDelayMs = int('reconnect.minDelayMs', o.minDelayMs, 500, 1, 3_600_000);
  const maxDelayMs = int('reconnect.maxDelayMs', o.maxDelayMs, Math.max(30_000, minDelayMs), minDelayMs, 3_600_000);
  return {
    minDelayMs,
    maxDelayMs,
    factor: num('reconnect.factor', o.factor, 2, 1, 100),
    jitter: num('reconnect.jitter', o.jitter, 0.5, 0, 1),
  };
}

export function resolveOptions(o: ClientOptions): ResolvedOptions {
  const level = o.protocolLevel ?? 4;
  if (level !== 4 && level !== 5) throw ternError('ERR_CLIENT_OPTIONS', `protocolLevel must be 4 or 5, got ${String(level)}`);
  const tls = o.tls === undefined || o.tls === false ? null : o.tls === true ? {} : o.tls;
  const keepalive = int('keepalive', o.keepalive, 60, 0, 65535);
  const clientId = o.clientId ?? `tern-${randomBytes(4).toString('hex')}`;
  if (clientId === '' && level === 4 && o.clean === false) {
    // [MQTT-3.1.3-7] a zero-length client id needs clean session = 1 in 3.1.1.
    throw ternError('ERR_CLIENT_OPTIONS', 'an empty clientId needs clean = true with MQTT 3.1.1');
  }
  const password = o.password === undefined ? undefined : Buffer.isBuffer(o.password) ? o.password : Buffer.from(o.password);
  return {
    host: o.host ?? 'localhost',
    port: int('port', o.port, tls ? 8883 : 1883, 1, 65535),
    tls,
    protocolLevel: level,
    clientId,
    clean: o.clean ?? true,
    keepalive,
    pingTimeoutMs: int('pingTimeoutMs', o.pingTimeoutMs, Math.max(keepalive * 1000, 1000), 1, 2 ** 31 - 1),
    username: o.username,
    password,
    will: o.will,
    properties: level === 5 ? o.properties : undefined,
    connectTimeoutMs: int('connectTimeoutMs', o.connectTimeoutMs, 30_000, 1, 2 ** 31 - 1),
    ackTimeoutMs: int('ackTimeoutMs', o.ackTimeoutMs, 0, 0, 2 ** 31 - 1),
    reconnect: resolveReconnect(o.reconnect),
    maxInflight: int('maxInflight', o.maxInflight, 65535, 1, 65535),
    maxPacketSize: int('maxPacketSize', o.maxPacketSize, MAX_PACKET_SIZE, 2, MAX_PACKET_SIZE),
    manualAcks: o.manualAcks ?? false,
  };
}
