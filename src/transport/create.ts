import type { ListenerConfig } from '../config/schema.js';
import type { ConnectionHandler, Listener } from './listener.js';
import { TcpListener } from './tcp.js';

/** Build the listener a config entry asks for. */
export function createListener(config: ListenerConfig, onConnection: ConnectionHandler): Listener {
  switch (config.type) {
    case 'tcp':
      return new TcpListener(config, onConnection);
  }
}
