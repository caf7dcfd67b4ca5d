/** UNSUBSCRIBE [MQTT-3.10]: remove each filter; UNSUBACK with a code per filter (v5). */
import { ReasonCode } from '../../codec/constants.js';
import type { UnsubscribePacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';

export function handleUnsubscribe(core: BrokerCore, conn: Connection, packet: UnsubscribePacket): void {
  const session = conn.session!;
  const codes: number[] = [];
  for (const filter of packet.filters) {
    const existed = session.subscriptions.delete(filter);
    if (existed) core.trie.remove(filter, session.clientId);
    codes.push(existed ? ReasonCode.SUCCESS : ReasonCode.NO_SUBSCRIPTION_EXISTED);
    if (existed && core.events.listenerCount('unsubscribed') > 0) core.events.emit('unsubscribed', session.clientId, filter);
  }
  conn.send({ type: 'unsuback', packetId: packet.packetId, reasonCodes: conn.level === 5 ? codes : [] });
}
