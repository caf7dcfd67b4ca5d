import net from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionHandler, Listener, ListenerAddress } from './listener.js';
import { createProxiedServer, isLoopbackHost, listen, type PeerAddress } from './server-util.js';

/**
 * Plain TCP listener (node:net). Nagle is off: MQTT packets are small and
 * latency matters. With `proxy_protocol`, each connection starts with a
 * PROXY header naming the real client.
 */
export class TcpListener implements Listener {
  readonly #config: ListenerConfig;
  readonly #onConnection: ConnectionHandler;
  readonly #log: Logger | undefined;
  readonly #loopback: boolean;
  #server: net.Server | null = null;
  #name: string;

  constructor(config: ListenerConfig, onConnection: ConnectionHandler, log?: Logger) {
    this.#config = config;
    this.#onConnection = onConnection;
    this.#log = log;
    // Behind a PROXY-protocol proxy the clients are remote even on a loopback bind.
    this.#loopback = isLoopbackHost(config.host) && !config.proxyProtocol;
    this.#name = `tcp:${config.host}:${config.port}`;
  }

  get name(): string {
    return this.#name;
  }

  async start(): Promise<ListenerAddress> {
    const server = this.#config.proxyProtocol
      ? createProxiedServer(
          (socket, peer) => this.#accept(socket, peer),
          (err, socket) => this.#log?.warn({ listener: this.#name, address: socket.remoteAddress, err: err.message }, 'PROXY header refused'),
        )
      : net.createServer({ noDelay: true }, (socket) => this.#accept(socket, undefined));
    this.#server = server;
    const address = await listen(server, this.#config, this.#log);
    this.#name = `tcp:${address.host}:${address.port}`;
    return address;
  }

  #accept(socket: net.Socket, peer: PeerAddress | undefined): void {
    if (peer !== undefined) socket.setNoDelay(true);
    this.#onConnection(socket, {
      remoteAddress: peer?.remoteAddress ?? socket.remoteAddress ?? '',
      remotePort: peer?.remotePort ?? socket.remotePort ?? 0,
      listener: this.#name,
      transport: 'tcp',
      loopback: this.#loopback,
      proxyAddress: peer?.proxyAddress,
    });
  }

  close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    // server.close() only calls back after every accepted socket has closed, and
    // closing those is the broker's job: stop accepting and return at once.
    if (server !== null) server.close();
    return Promise.resolve();
  }

  reload(): Promise<void> {
    return Promise.resolve();
  }
}
