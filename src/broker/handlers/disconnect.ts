import { ReasonCode } from '../../codec/constants.js';
import type { DisconnectPacket } from '../../codec/types.js';
import { ternError } from '../../errors.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

/**
 * Client DISCONNECT: the will is discarded [MQTT-3.14.4-3] unless a v5 client
 * asks for it with 0x04 [MQTT-3.14.2-?]; a v5 client may change its session
 * expiry, but not from 0 to non-zero [MQTT-3.14.2-2].
 */
export function handleDisconnect(_core: BrokerCore, conn: Connection, packet: DisconnectPacket): void {
  const session = conn.session;
  const expiry = packet.properties?.sessionExpiryInterval;
  if (expiry !== undefined && session !== null) {
    if (session.expiryInterval === 0 && expiry !== 0) {
      throw ternError('ERR_MQTT_PROTOCOL', 'session expiry changed from 0 on DISCONNECT');
    }
    session.expiryInterval = expiry;
  }
  conn.cleanDisconnect = packet.reasonCode !== ReasonCode.DISCONNECT_WITH_WILL;
  conn.closeReason = 'client disconnected';
  conn.end();
}
