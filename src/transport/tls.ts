/**
 * MQTT over TLS (node:tls), plus the TLS pieces the wss listener shares:
 * loading certificate files, checking the client certificate, deriving the
 * username from it, and swapping certificates on reload().
 *
 * Client certificates (mosquitto semantics):
 * - no `ca_file`: none are asked for;
 * - `ca_file`: asked for; a client that sends one must send a valid one
 *   (chain to ca_file, in date), a client that sends none is still accepted
 *   unless `require_certificate`;
 * - `use_identity_as_username`: the subject field `identity_field` (CN) of
 *   the verified certificate becomes the username (TransportInfo.identity);
 *   a certificate without that field is refused.
 */
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { ternError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionHandler, Listener, ListenerAddress, PeerCertificateInfo } from './listener.js';
import { createProxiedServer, isLoopbackHost, listen, type PeerAddress } from './server-util.js';

/** A client must finish the TLS handshake within this time, milliseconds (Node's default is 120 s). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** What tls.createServer / setSecureContext need from the listener's files and settings. */
export type TlsContextOptions = Pick<tls.SecureContextOptions, 'cert' | 'key' | 'ca' | 'minVersion' | 'ciphers'>;

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw ternError('ERR_TLS_FILE', `${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * Read cert/key/CA files and check that they make a usable context (PEM
 * valid, key matches certificate). Throws ERR_TLS_FILE.
 */
export async function loadTlsContextOptions(config: ListenerConfig): Promise<TlsContextOptions> {
  const [cert, key, ca] = await Promise.all([
    readPem(config.certFile, 'cert_file'),
    readPem(config.keyFile, 'key_file'),
    config.caFile === '' ? undefined : readPem(config.caFile, 'ca_file'),
  ]);
  const options: TlsContextOptions = { cert, key, minVersion: config.tlsMinVersion };
  if (ca !== undefined) options.ca = ca;
  if (config.ciphers !== '') options.ciphers = config.ciphers;
  try {
    tls.createSecureContext(options);
  } catch (err) {
    throw ternError('ERR_TLS_FILE', `${config.certFile} / ${config.keyFile}: ${(err as Error).message}`, { cause: err });
  }
  return options;
}

/** Server options for tls.createServer / https.createServer. */
export function tlsServerOptions(config: ListenerConfig, context: TlsContextOptions): tls.TlsOptions {
  return {
    ...context,
    requestCert: config.caFile !== '',
    rejectUnauthorized: config.requireCertificate,
    handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS,
  };
}

function subjectOf(subject: tls.Certificate | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (subject === undefined || subject === null) return out;
  for (const [k, v] of Object.entries(subject as unknown as Record<string, string | string[]>)) {
    out[k] = Array.isArray(v) ? v.join('+') : v;
  }
  return out;
}

export type PeerCheck =
  | { readonly ok: true; readonly certificate: PeerCertificateInfo | undefined; readonly identity: string | undefined }
  | { readonly ok: false; readonly reason: string };

/** Apply the listener's client-certificate policy to a finished handshake. */
export function checkPeer(socket: tls.TLSSocket, config: ListenerConfig): PeerCheck {
  if (config.caFile === '') return { ok: true, certificate: undefined, identity: undefined };
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && cert !== undefined && Object.keys(cert).length > 0;
  if (!presented) {
    return config.requireCertificate ? { ok: false, reason: 'no client certificate' } : { ok: true, certificate: undefined, identity: undefined };
  }
  if (!socket.authorized) return { ok: false, reason: `client certificate refused: ${String(socket.authorizationError)}` };
  const subject = subjectOf(cert.subject);
  const certificate: PeerCertificateInfo = {
    subject,
    issuer: subjectOf(cert.issuer)['CN'] ?? '',
    fingerprint256: cert.fingerprint256,
    serialNumber: cert.serialNumber,
    validTo: cert.valid_to,
  };
  let identity: string | undefined;
  if (config.useIdentityAsUsername) {
    identity = subject[config.identityField];
    if (identity === undefined || identity === '') {
      return { ok: false, reason: `client certificate has no ${config.identityField} for use_identity_as_username` };
    }
  }
  return { ok: true, certificate, identity };
}

/** `addr:port` of a socket: unique among the open TCP connections of one listener. */
export function peerKey(address: string | undefined, port: number | undefined): string {
  return `${address ?? ''}:${port ?? 0}`;
}

export class TlsListener implements Listener {
  readonly #config: ListenerConfig;
  readonly #onConnection: ConnectionHandler;
  readonly #log: Logger | undefined;
  readonly #loopback: boolean;
  #tlsServer: tls.Server | null = null;
  /** The socket that listens: the TLS server itself, or a PROXY-reading net.Server in front of it. */
  #server: net.Server | null = null;
  /** PROXY peers by the raw socket's `addr:port`, until the handshake finishes or the socket closes. */
  readonly #proxied = new Map<string, PeerAddress>();
  #name: string;

  constructor(config: ListenerConfig, onConnection: ConnectionHandler, log?: Logger) {
    this.#config = config;
    this.#onConnection = onConnection;
    this.#log = log;
    this.#loopback = isLoopbackHost(config.host) && !config.proxyProtocol;
    this.#name = `tls:${config.host}:${config.port}`;
  }

  get name(): string {
    return this.#name;
  }

  async start(): Promise<ListenerAddress> {
    const config = this.#config;
    const context = await loadTlsContextOptions(config);
    const tlsServer = tls.createServer({ ...tlsServerOptions(config, context), noDelay: true });
    tlsServer.on('secureConnection', (socket) => this.#secured(socket));
    tlsServer.on('tlsClientError', (err, socket) => {
      this.#log?.debug({ listener: this.#name, address: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
    });
    this.#tlsServer = tlsServer;
    if (config.proxyProtocol) {
      this.#server = createProxiedServer(
        (socket, peer) => {
          const key = peerKey(socket.remoteAddress, socket.remotePort);
          this.#proxied.set(key, peer);
          socket.once('close', () => this.#proxied.delete(key));
          // The TLS server does the handshake on the socket (the bytes after
          // the header were pushed back and are read by the TLS layer).
          tlsServer.emit('connection', socket);
        },
        (err, socket) => this.#log?.warn({ listener: this.#name, address: socket.remoteAddress, err: err.message }, 'PROXY header refused'),
      );
    } else {
      this.#server = tlsServer;
    }
    const address = await listen(this.#server, config, this.#log);
    this.#name = `tls:${address.host}:${address.port}`;
    return address;
  }

  #secured(socket: tls.TLSSocket): void {
    const check = checkPeer(socket, this.#config);
    const own = peerKey(socket.remoteAddress, socket.remotePort);
    const peer = this.#proxied.get(own);
    if (!check.ok) {
      this.#log?.info({ listener: this.#name, address: peer?.remoteAddress ?? socket.remoteAddress, reason: check.reason }, 'TLS client refused');
      socket.destroy();
      return;
    }
    this.#onConnection(socket, {
      remoteAddress: peer?.remoteAddress ?? socket.remoteAddress ?? '',
      remotePort: peer?.remotePort ?? socket.remotePort ?? 0,
      listener: this.#name,
      transport: 'tls',
      loopback: this.#loopback,
      proxyAddress: peer?.proxyAddress,
      certificate: check.certificate,
      identity: check.identity,
    });
  }

  close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#tlsServer = null;
    if (server !== null) server.close();
    return Promise.resolve();
  }

  /** New certificate/key/CA for new connections; open connections keep theirs. */
  async reload(): Promise<void> {
    const context = await loadTlsContextOptions(this.#config);
    this.#tlsServer?.setSecureContext(context);
    this.#log?.info({ listener: this.#name }, 'TLS certificate reloaded');
  }
}
