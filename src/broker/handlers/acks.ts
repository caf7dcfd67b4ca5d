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

export function handlePubrec(_core: BrokerCore, conn: Connection, packet: AckPacket): void {
  const session = conn.session;
  if (session === null) return;
  // v5: a PUBREC with an error reason ends the flow [MQTT-4.3.3-?].
  if (packet.reasonCode !== undefined && packet.reasonCode >= 0x80) {
    session.complete(packet.packetId, OutState.SENT);
    return;
  }
  if (session.received(packet.packetId)) {
    conn.send({ type: 'pubrel', packetId: packet.packetId });
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
  const known = session.inboundQos2.delete(packet.packetId);
  if (known && session.stored) core.durable.deleteInbound(session.clientId, packet.packetId);
  if (known || conn.level !== 5) conn.send({ type: 'pubcomp', packetId: packet.packetId });
  else conn.send({ type: 'pubcomp', packetId: packet.packetId, reasonCode: ReasonCode.PACKET_IDENTIFIER_NOT_FOUND });
}
