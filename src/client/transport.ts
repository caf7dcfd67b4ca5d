/**
 * Opens the byte stream a client speaks MQTT over: TCP (node:net) or TLS
 * (node:tls). The caller waits for the returned `readyEvent` before writing
 * CONNECT; everything else about the stream is plain Duplex (P1).
 */
import { isIP } from 'node:net';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { ResolvedOptions } from './options.js';

export interface OpenedStream {
  readonly socket: Socket;
  /** 'connect' for TCP, 'secureConnect' for TLS. */
  readonly readyEvent: 'connect' | 'secureConnect';
}

export function openStream(o: ResolvedOptions): OpenedStream {
  const tls = o.tls;
  if (tls === null) {
    const socket = netConnect({ host: o.host, port: o.port, noDelay: true });
    return { socket, readyEvent: 'connect' };
  }
  const servername = tls.servername ?? (isIP(o.host) === 0 ? o.host : undefined);
  const socket = tlsConnect({
    host: o.host,
    port: o.port,
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    pfx: tls.pfx,
    passphrase: tls.passphrase,
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
    servername,
  });
  socket.setNoDelay(true);
  return { socket, readyEvent: 'secureConnect' };
}
