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
    if (existed) {
      core.trie.remove(filter, session.clientId);
      if (session.stored) core.durable.deleteSubscription(session.clientId, filter);
    }
    codes.push(existed ? ReasonCode.SUCCESS : ReasonCode.NO_SUBSCRIPTION_EXISTED);
    if (existed && core.events.listenerCount('unsubscribed') > 0) core.events.emit('unsubscribed', session.clientId, filter);
    if (existed && core.security.hooks.listens('unsubscribe')) core.security.hooks.emit('unsubscribe', conn, filter);
  }
  const unsuback = { type: 'unsuback' as const, packetId: packet.packetId, reasonCodes: conn.level === 5 ? codes : [] };
  if (!core.durable.dirty) {
    conn.send(unsuback);
    return;
  }
  core.durable.flush().then(
    () => {
      if (!conn.closed) conn.send(unsuback);
    },
    (err: unknown) => {
      core.log.error({ err, clientId: session.clientId }, 'unsubscribe failed');
      if (!conn.closed) conn.disconnect(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, 'storage unavailable');
    },
  );
}
