/**
 * Acknowledgement flows [MQTT-4.3]: PUBACK/PUBREC/PUBCOMP for messages the
 * broker sent, PUBREL for QoS 2 messages it received.
 */
import { ReasonCode } from '../../codec/constants.js';
import type { AckPacket } from '../../codec/types.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';
import { OutState } from '../session.js';

export function handlePuback(_core: BrokerCore, conn: Connection, packet: AckPacket): void {
  conn.session?.complete(packet.packetId, OutState.SENT);
}

export function handlePubrec(core: BrokerCore, conn: Connection, packet: AckPacket): void {
  const session = conn.session;
  if (session === null) return;
  // v5: a PUBREC with an error reason ends the flow [MQTT-4.3.3-?].
  if (packet.reasonCode !== undefined && packet.reasonCode >= 0x80) {
    session.complete(packet.packetId, OutState.SENT);
    return;
  }
  if (session.received(packet.packetId)) {
    // Stored sessions: PUBREL only once the PUBREL state is durable, so a restart
    // resends PUBREL rather than the PUBLISH the client already passed on.
    afterCommit(core, conn, { type: 'pubrel', packetId: packet.packetId });
  } else if (conn.level === 5) {
    conn.send({ type: 'pubrel', packetId: packet.packetId, reasonCode: ReasonCode.PACKET_IDENTIFIER_NOT_FOUND });
  }
}

export function handlePubcomp(_core: BrokerCore, conn: Connection, packet: AckPacket): void {
  conn.session?.complete(packet.packetId, OutState.PUBREL);
}

export function handlePubrel(core: BrokerCore, conn: Connection, packet: AckPacket): void {
  const session = conn.session;
  if (session === null) return;
  // [MQTT-4.3.3-?] PUBREL releases the packet id; answer PUBCOMP even when unknown.
  // An unknown id is answered with success too, as Mosquitto does: after a broker
  // restart the release may already be stored while the client resends PUBREL,
  // and 0x92 there makes clients report a failure for a delivered message.
  const known = session.inboundQos2.delete(packet.packetId);
  // PUBCOMP frees the id for reuse by the client: only once its release is durable,
  // or a restart would take the next message with that id for a duplicate.
  if (known && session.stored) core.durable.deleteInbound(session.clientId, packet.packetId);
  afterCommit(core, conn, { type: 'pubcomp', packetId: packet.packetId });
}

/** Send `packet` now, or once buffered storage changes are committed. */
function afterCommit(core: BrokerCore, conn: Connection, packet: AckPacket): void {
  if (!core.durable.dirty) {
    conn.send(packet);
    return;
  }
  core.durable.flush().then(
    () => {
      if (!conn.closed) conn.send(packet);
    },
    (err: unknown) => {
      core.log.error({ err, clientId: conn.clientId }, 'storage commit failed');
      if (!conn.closed) conn.disconnect(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, 'storage unavailable');
    },
  );
}
