/**
 * Packet type -> handler (P2). Handlers throw TernError for protocol
 * violations; the connection turns them into CONNACK/DISCONNECT and closes.
 */
import type { Packet } from '../codec/types.js';
import { ternError } from '../errors.js';
import type { Connection } from './connection.js';
import type { BrokerCore } from './core.js';
import { handlePuback, handlePubcomp, handlePubrec, handlePubrel } from './handlers/acks.js';
import { handleAuth } from './handlers/auth.js';
import { handleConnect } from './handlers/connect.js';
import { handleDisconnect } from './handlers/disconnect.js';
import { handlePingreq } from './handlers/ping.js';
import { handlePublish } from './handlers/publish.js';
import { handleSubscribe } from './handlers/subscribe.js';
import { handleUnsubscribe } from './handlers/unsubscribe.js';

export function dispatch(core: BrokerCore, conn: Connection, packet: Packet): void {
  switch (packet.type) {
    case 'publish':
      return handlePublish(core, conn, packet);
    case 'puback':
      return handlePuback(core, conn, packet);
    case 'pubrec':
      return handlePubrec(core, conn, packet);
    case 'pubrel':
      return handlePubrel(core, conn, packet);
    case 'pubcomp':
      return handlePubcomp(core, conn, packet);
    case 'subscribe':
      return handleSubscribe(core, conn, packet);
    case 'unsubscribe':
      return handleUnsubscribe(core, conn, packet);
    case 'pingreq':
      return handlePingreq(core, conn);
    case 'disconnect':
      return handleDisconnect(core, conn, packet);
    case 'connect':
      return handleConnect(core, conn, packet);
    case 'auth':
      return handleAuth(core, conn, packet);
    default:
      // CONNACK, SUBACK, UNSUBACK and PINGRESP are never sent by a client.
      throw ternError('ERR_MQTT_PROTOCOL', `unexpected ${packet.type} from a client`);
  }
}
