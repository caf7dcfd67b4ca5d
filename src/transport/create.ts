import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { ConnectionHandler, Listener } from './listener.js';
import { TcpListener } from './tcp.js';
import { TlsListener } from './tls.js';
import { WebSocketListener } from './websocket.js';

/**
 * Build the listener a config entry asks for. `log` receives refused
 * handshakes (TLS, PROXY header) and certificate reloads.
 */
export function createListener(config: ListenerConfig, onConnection: ConnectionHandler, log?: Logger): Listener {
  switch (config.type) {
    case 'tcp':
      return new TcpListener(config, onConnection, log);
    case 'tls':
      return new TlsListener(config, onConnection, log);
    case 'ws':
    case 'wss':
      return new WebSocketListener(config, onConnection, log);
  }
}
