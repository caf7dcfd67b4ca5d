import net from 'node:net';
import type { ListenerConfig } from '../config/schema.js';
import { ternError } from '../errors.js';
import type { ConnectionHandler, Listener, ListenerAddress } from './listener.js';

/** Plain TCP listener (node:net). Nagle is off: MQTT packets are small and latency matters. */
export class TcpListener implements Listener {
  readonly #config: ListenerConfig;
  readonly #onConnection: ConnectionHandler;
  #server: net.Server | null = null;
  #name: string;

  constructor(config: ListenerConfig, onConnection: ConnectionHandler) {
    this.#config = config;
    this.#onConnection = onConnection;
    this.#name = `tcp:${config.host}:${config.port}`;
  }

  get name(): string {
    return this.#name;
  }

  start(): Promise<ListenerAddress> {
    const { host, port, maxConnections } = this.#config;
    const server = net.createServer({ noDelay: true }, (socket) => {
      this.#onConnection(socket, {
        remoteAddress: socket.remoteAddress ?? '',
        remotePort: socket.remotePort ?? 0,
        listener: this.#name,
      });
    });
    if (maxConnections > 0) server.maxConnections = maxConnections;
    this.#server = server;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(ternError('ERR_LISTEN', `${host}:${port}: ${err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen({ host, port }, () => {
        server.removeListener('error', onError);
        server.on('error', () => {});
        const address = server.address() as net.AddressInfo;
        this.#name = `tcp:${address.address}:${address.port}`;
        resolve({ type: 'tcp', host: address.address, port: address.port });
      });
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
}
