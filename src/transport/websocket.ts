/**
 * MQTT over WebSocket (`ws`) and WebSocket over TLS (`wss`), MQTT 5.0 §6 /
 * 3.1.1 §6. An HTTP(S) server accepts upgrades on `path` only; each
 * WebSocket becomes a Duplex of MQTT bytes for the broker (P1).
 *
 * - Subprotocol: `mqtt` [MQTT-6.0.0-3], or `mqttv3.1` (old clients); a client
 *   that offers neither gets none, and browsers then give up.
 * - Binary frames only [MQTT-6.0.0-1]: a text frame closes the connection.
 * - A packet may span frames and a frame may hold several packets
 *   [MQTT-6.0.0-2]: the Duplex is a plain byte stream, the broker frames it.
 * - No per-message compression: it costs CPU per packet and opens the door
 *   to compression-ratio attacks; MQTT payloads are the application's to compress.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionHandler, Listener, ListenerAddress, PeerCertificateInfo } from './listener.js';
import { isLoopbackHost, listen } from './server-util.js';
import { checkPeer, loadTlsContextOptions, tlsServerOptions } from './tls.js';

/** Time allowed for the HTTP upgrade request's headers, milliseconds. */
const UPGRADE_TIMEOUT_MS = 10_000;

function selectProtocol(protocols: Set<string>): string | false {
  if (protocols.has('mqtt')) return 'mqtt';
  if (protocols.has('mqttv3.1')) return 'mqttv3.1';
  return false;
}

/**
 * A WebSocket as a byte Duplex. Writes become binary frames (a corked batch
 * becomes one frame); the write callback fires when ws has handed the frame
 * to the socket, so the broker's backpressure sees the real socket. Reads
 * pause the WebSocket when the reader is full.
 */
export class WebSocketDuplex extends Duplex {
  readonly #ws: WebSocket;

  constructor(ws: WebSocket) {
    super({ allowHalfOpen: false });
    this.#ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        // [MQTT-6.0.0-1] "If any other type of data frame is received the recipient MUST close the Network Connection".
        ws.close(1003, 'MQTT needs binary frames');
        this.destroy();
        return;
      }
      if (!this.push(data)) ws.pause();
    });
    ws.once('close', () => {
      this.push(null);
      // The peer is gone: nothing more can be written either.
      if (!this.writableFinished) this.destroy();
    });
    ws.on('error', (err) => this.destroy(err));
  }

  override _read(): void {
    if (this.#ws.isPaused) this.#ws.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      callback();
      return;
    }
    this.#ws.send(chunk, { binary: true }, callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    if (this.#ws.readyState !== WebSocket.OPEN) {
      callback();
      return;
    }
    const data = chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk));
    this.#ws.send(data, { binary: true }, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#ws.close(1000);
    callback();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    const state = this.#ws.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) this.#ws.terminate();
    else if (state === WebSocket.CLOSING) {
      // Waiting for the peer's close frame could take ws's 30 s timeout.
      this.#ws.terminate();
    }
    callback(err);
  }
}

export class WebSocketListener implements Listener {
  readonly #config: ListenerConfig;
  readonly #onConnection: ConnectionHandler;
  readonly #log: Logger | undefined;
  readonly #loopback: boolean;
  readonly #secure: boolean;
  #server: http.Server | https.Server | null = null;
  #wss: WebSocketServer | null = null;
  #name: string;

  constructor(config: ListenerConfig, onConnection: ConnectionHandler, log?: Logger) {
    this.#config = config;
    this.#onConnection = onConnection;
    this.#log = log;
    this.#secure = config.type === 'wss';
    this.#loopback = isLoopbackHost(config.host);
    this.#name = `${config.type}:${config.host}:${config.port}`;
  }

  get name(): string {
    return this.#name;
  }

  async start(): Promise<ListenerAddress> {
    const config = this.#config;
    const wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      handleProtocols: selectProtocol,
    });
    this.#wss = wss;
    const server = this.#secure
      ? https.createServer({ ...tlsServerOptions(config, await loadTlsContextOptions(config)), noDelay: true })
      : http.createServer({ noDelay: true });
    server.headersTimeout = UPGRADE_TIMEOUT_MS;
    server.requestTimeout = UPGRADE_TIMEOUT_MS;
    server.on('request', (req, res) => {
      const onPath = pathOf(req.url) === config.path;
      res.writeHead(onPath ? 426 : 404, onPath ? { Upgrade: 'websocket', Connection: 'Upgrade' } : {});
      res.end(onPath ? 'MQTT over WebSocket: upgrade required\n' : 'not found\n');
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(wss, req, socket, head));
    server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      else socket.destroy();
    });
    if (this.#secure) {
      server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
        this.#log?.debug({ listener: this.#name, address: socket.remoteAddress, err: err.message }, 'TLS handshake failed');
      });
    }
    this.#server = server;
    const address = await listen(server, config, this.#log);
    this.#name = `${config.type}:${address.host}:${address.port}`;
    return address;
  }

  #upgrade(wss: WebSocketServer, req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    if (pathOf(req.url) !== this.#config.path) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    let certificate: PeerCertificateInfo | undefined;
    let identity: string | undefined;
    if (this.#secure) {
      const check = checkPeer(socket as TLSSocket, this.#config);
      if (!check.ok) {
        this.#log?.info({ listener: this.#name, address: socket.remoteAddress, reason: check.reason }, 'TLS client refused');
        socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
        return;
      }
      certificate = check.certificate;
      identity = check.identity;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      this.#onConnection(new WebSocketDuplex(ws), {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        listener: this.#name,
        transport: this.#secure ? 'wss' : 'ws',
        loopback: this.#loopback,
        certificate,
        identity,
      });
    });
  }

  close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    this.#wss?.close();
    this.#wss = null;
    // Upgraded sockets are detached from the HTTP server and belong to the
    // broker; drop idle keep-alive HTTP sockets so close() completes.
    if (server !== null) {
      server.close();
      server.closeIdleConnections();
    }
    return Promise.resolve();
  }

  async reload(): Promise<void> {
    if (!this.#secure) return;
    const context = await loadTlsContextOptions(this.#config);
    (this.#server as https.Server | null)?.setSecureContext(context);
    this.#log?.info({ listener: this.#name }, 'TLS certificate reloaded');
  }
}

function pathOf(url: string | undefined): string {
  if (url === undefined) return '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
