/** Pieces shared by the listeners: binding, loopback detection, PROXY-protocol accept. */
import net from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { ternError } from '../errors.js';
import type { ListenerAddress } from './listener.js';
import { readProxyHeader, type ProxyHeader } from './proxy-protocol.js';

/** How long a proxied connection may take to send its PROXY header, milliseconds. */
export const PROXY_HEADER_TIMEOUT_MS = 10_000;

/** Is this bind address loopback-only? (`0.0.0.0`, `::` and real interfaces are not.) */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h === 'localhost' || h === '::1') return true;
  if (h.startsWith('::ffff:')) return isLoopbackHost(h.slice(7));
  return net.isIPv4(h) && h.startsWith('127.');
}

/** While accepting keeps failing, at most one log line per this many milliseconds. */
export const ACCEPT_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Listen on config host:port; resolves with the bound address, rejects with
 * ERR_LISTEN. Later accept failures are logged (see watchAcceptErrors), never thrown.
 */
export function listen(server: net.Server, config: ListenerConfig, log?: Logger): Promise<ListenerAddress> {
  const { host, port, maxConnections, type } = config;
  if (maxConnections > 0) server.maxConnections = maxConnections;
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(ternError('ERR_LISTEN', `${type} ${host}:${port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.removeListener('error', onError);
      const address = server.address() as net.AddressInfo;
      watchAcceptErrors(server, `${type}:${address.address}:${address.port}`, log);
      resolve({ type, host: address.address, port: address.port });
    });
  });
}

/**
 * A listening server's 'error' events are accept failures. Out of file
 * descriptors (EMFILE, or ENFILE system-wide), libuv accepts each waiting
 * connection on a descriptor it keeps spare and closes it at once, without
 * telling Node (the broker refuses connections itself before that: see
 * broker/fd-budget.ts); only when it has no spare descriptor either does the
 * error reach Node. Without a listener it would crash the process; here it
 * is logged once when the failures start, then at most every
 * ACCEPT_ERROR_LOG_INTERVAL_MS while they go on (with the count), and once
 * more when a connection is accepted again.
 */
export function watchAcceptErrors(server: net.Server, name: string, log: Logger | undefined): void {
  let failures = 0;
  let unlogged = 0;
  let loggedAt = 0;
  server.on('error', (err: NodeJS.ErrnoException) => {
    failures++;
    unlogged++;
    const now = Date.now();
    if (failures > 1 && now - loggedAt < ACCEPT_ERROR_LOG_INTERVAL_MS) return;
    loggedAt = now;
    const outOfFds = err.code === 'EMFILE' || err.code === 'ENFILE';
    log?.warn(
      { listener: name, code: err.code, failures: unlogged },
      outOfFds
        ? `cannot accept connections: out of file descriptors (${err.code}); new connections are closed until some close`
        : `accepting a connection failed: ${err.message}`,
    );
    unlogged = 0;
  });
  server.on('connection', () => {
    if (failures === 0) return;
    log?.info({ listener: name, failures }, 'accepting connections again');
    failures = 0;
    unlogged = 0;
  });
}

/** Where a connection really comes from, after an optional PROXY header. */
export interface PeerAddress {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The proxy's own address when a PROXY header named the client. */
  readonly proxyAddress: string | undefined;
}

export function peerOf(socket: net.Socket, header?: ProxyHeader): PeerAddress {
  const own = socket.remoteAddress ?? '';
  if (header === undefined || header.command === 'local' || header.sourceAddress === undefined) {
    return { remoteAddress: own, remotePort: socket.remotePort ?? 0, proxyAddress: undefined };
  }
  return { remoteAddress: header.sourceAddress, remotePort: header.sourcePort ?? 0, proxyAddress: own };
}

/**
 * A net.Server whose connections first send a PROXY header. `accept` gets
 * the socket (header consumed, later bytes still unread) and the real peer.
 * Bad or missing headers close the connection (logged by `onReject`).
 */
export function createProxiedServer(accept: (socket: net.Socket, peer: PeerAddress) => void, onReject: (err: Error, socket: net.Socket) => void): net.Server {
  return net.createServer({ noDelay: true }, (socket) => {
    readProxyHeader(socket, PROXY_HEADER_TIMEOUT_MS, (err, header) => {
      if (err !== null) {
        onReject(err, socket);
        return;
      }
      accept(socket, peerOf(socket, header));
    });
  });
}
