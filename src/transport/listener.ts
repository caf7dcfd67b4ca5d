/**
 * A listener turns accepted connections into Duplex streams plus
 * ConnectionInfo and hands them to the broker (P1). Nothing MQTT-specific.
 */
import type { Duplex } from 'node:stream';
import type { ConnectionInfo } from '../broker/connection.js';

export type TransportType = 'tcp' | 'tls' | 'ws' | 'wss';

export interface ListenerAddress {
  type: string;
  host: string;
  port: number;
}

/** The verified TLS client certificate, reduced to what auth and logs use. */
export interface PeerCertificateInfo {
  /** Subject fields (CN, O, OU, emailAddress, ...); multi-valued fields are joined with `+`. */
  readonly subject: Readonly<Record<string, string>>;
  /** Issuer common name, for logs. */
  readonly issuer: string;
  /** SHA-256 fingerprint, `AA:BB:...`. */
  readonly fingerprint256: string;
  readonly serialNumber: string;
  readonly validTo: string;
}

/**
 * What a listener knows about a connection. Extends the broker's
 * ConnectionInfo; every field beyond it is optional for the broker to use.
 */
export interface TransportInfo extends ConnectionInfo {
  readonly transport: TransportType;
  /**
   * The listener is bound to a loopback address only (127.0.0.0/8, ::1,
   * localhost): `auth.allow_anonymous = "loopback"` allows anonymous clients here.
   */
  readonly loopback: boolean;
  /**
   * Set when a PROXY protocol header gave the client address: the address of
   * the proxy itself (`remoteAddress` is then the real client's).
   */
  readonly proxyAddress?: string | undefined;
  /** TLS: the client certificate, present only when one was sent and verified against `ca_file`. */
  readonly certificate?: PeerCertificateInfo | undefined;
  /**
   * TLS with `use_identity_as_username`: the certificate subject field
   * (`identity_field`, CN by default). The broker MUST use it as the
   * client's username and ignore the CONNECT username and password.
   */
  readonly identity?: string | undefined;
}

export type ConnectionHandler = (stream: Duplex, info: TransportInfo) => void;

export interface Listener {
  readonly name: string;
  start(): Promise<ListenerAddress>;
  /** Stop accepting; existing connections are the broker's to close. */
  close(): Promise<void>;
  /**
   * Re-read files (TLS certificate, key and CA) for new connections without
   * touching open ones (SIGHUP). A broken file keeps the old ones and rejects
   * with a coded error. No-op for listeners without files.
   */
  reload(): Promise<void>;
}
