/**
 * Inbound PUBLISH [MQTT-3.3]: topic alias resolution and topic checks,
 * routing, retained storage, and the QoS 1/2 acknowledgement flows. QoS 2 is
 * routed once on first receipt; a resent PUBLISH with an id still awaiting
 * PUBREL is only acknowledged again [MQTT-4.3.3-?] (exactly once).
 */
import { isUtf8 } from 'node:buffer';
import { ReasonCode } from '../../codec/constants.js';
import type { PublishPacket } from '../../codec/types.js';
import { isPromise } from '../../hooks/registry.js';
import type { HookMessage, Verdict } from '../../hooks/types.js';
import { ternError } from '../../errors.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';
import { Message } from '../message.js';
import { isValidTopicName } from '../topic.js';

export function handlePublish(core: BrokerCore, conn: Connection, packet: PublishPacket): void {
  const session = conn.session!;
  const mqtt = core.config.mqtt;
  const props = packet.properties;
  let topic = packet.topic;

  if (props?.topicAlias !== undefined) topic = resolveAlias(core, conn, topic, props.topicAlias);
  if (topic.length > core.config.limits.maxTopicLength || !isValidTopicName(topic, core.config.limits.maxTopicLevels)) {
    throw ternError('ERR_MQTT_TOPIC_NAME_INVALID', JSON.stringify(topic.slice(0, 200)));
  }
  if (props !== undefined) {
    // [MQTT-3.3.4-6] a client must not send subscription identifiers.
    if (props.subscriptionIdentifiers !== undefined) throw ternError('ERR_MQTT_PROTOCOL', 'subscription identifier in PUBLISH');
    // [MQTT-3.3.2-14] the response topic is a topic name: no wildcards.
    if (props.responseTopic !== undefined && !isValidTopicName(props.responseTopic, core.config.limits.maxTopicLevels)) {
      throw ternError('ERR_MQTT_PROTOCOL', 'invalid response topic');
    }
  }
  if (packet.qos > mqtt.maxQos) {
    // [MQTT-3.2.2-11] more than the announced maximum QoS.
    throw ternError('ERR_MQTT_QOS_NOT_SUPPORTED', `QoS ${packet.qos} > maximum ${mqtt.maxQos}`);
  }
  if (packet.retain && !mqtt.retainAvailable) {
    throw ternError('ERR_MQTT_RETAIN_NOT_SUPPORTED'); // [MQTT-3.2.2-14]
  }

  const qos = packet.qos;
  const packetId = packet.packetId ?? 0;
  core.stats.publishReceivedByQos[qos]!++;
  if (qos === 2) {
    if (session.inboundQos2.has(packetId)) {
      // Duplicate of a message already routed: acknowledge only.
      return acknowledge(core, conn, 'pubrec', packetId, ReasonCode.SUCCESS);
    }
  }
  if (qos > 0 && conn.level === 5 && session.inboundQos2.size + conn.inboundUnacked >= mqtt.receiveMaximum) {
    throw ternError('ERR_MQTT_RECEIVE_MAXIMUM_EXCEEDED'); // [MQTT-3.3.4-9]
  }

  // [MQTT-3.3.2-?] payload format indicator 1: the payload must be UTF-8.
  if (props?.payloadFormatIndicator === 1 && !isUtf8(packet.payload)) {
    if (qos === 0) throw ternError('ERR_MQTT_PAYLOAD_FORMAT_INVALID');
    return acknowledge(core, conn, qos === 1 ? 'puback' : 'pubrec', packetId, ReasonCode.PAYLOAD_FORMAT_INVALID);
  }

  // Authorization [MQTT-3.3.5-2]: a hook may answer later; the connection holds its next packets meanwhile.
  const hooks = core.security.hooks;
  const asked: HookMessage = topic === packet.topic ? packet : { ...packet, topic };
  const verdict = hooks.authorizePublish(conn, asked);
  if (isPromise(verdict)) {
    conn.hold();
    Promise.resolve(verdict).then(
      (v) => {
        if (conn.closed) return;
        authorized(core, conn, packet, asked, v);
        conn.release();
      },
      (err: unknown) => core.onProtocolError(conn, ternError('ERR_MQTT_NOT_AUTHORIZED', String(err), { cause: err })),
    );
    return;
  }
  authorized(core, conn, packet, asked, verdict);
}

function authorized(core: BrokerCore, conn: Connection, packet: PublishPacket, asked: HookMessage, verdict: Verdict): void {
  const qos = packet.qos;
  const packetId = packet.packetId ?? 0;
  if (!verdict.allowed) {
    core.log.debug({ clientId: conn.clientId, topic: asked.topic, reason: verdict.reason }, 'publish not authorized');
    if (qos === 0) return;
    // v5 says why; 3.1.1 has no negative ack: acknowledge and drop [MQTT-3.3.5-2].
    return acknowledge(core, conn, qos === 1 ? 'puback' : 'pubrec', packetId, conn.level === 5 ? verdict.reasonCode : ReasonCode.SUCCESS);
  }
  const hooks = core.security.hooks;
  if (!hooks.hasMessageHooks) return accept(core, conn, packet, asked);
  const changed = hooks.transformMessage(conn, asked);
  if (!isPromise(changed)) return accept(core, conn, packet, changed);
  conn.hold();
  Promise.resolve(changed).then(
    (m) => {
      if (conn.closed) return;
      accept(core, conn, packet, m);
      conn.release();
    },
    (err: unknown) => core.onProtocolError(conn, ternError('ERR_MQTT_PROTOCOL', `message hook failed: ${String(err)}`, { cause: err })),
  );
}

/** Route an authorized message (null: a message hook dropped it), keep it if retained, then acknowledge. */
function accept(core: BrokerCore, conn: Connection, packet: PublishPacket, m: HookMessage | null): void {
  const session = conn.session!;
  const qos = packet.qos;
  const packetId = packet.packetId ?? 0;
  const type = qos === 1 ? 'puback' : 'pubrec';
  if (m === null) {
    // Dropped by a message hook: acknowledged as handled, like a message nobody subscribed to.
    if (qos > 0) acknowledge(core, conn, type, packetId, conn.level === 5 ? ReasonCode.NO_MATCHING_SUBSCRIBERS : ReasonCode.SUCCESS);
    return;
  }
  const expiry = m.properties?.messageExpiryInterval;
  const message = new Message({
    topic: m.topic,
    payload: m.payload,
    qos: m.qos,
    retain: m.retain,
    properties: m.properties,
    expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : undefined,
    origin: conn.clientId,
  });
  // [MQTT-3.3.1-5] keep it if retained; for QoS 1/2 the ack waits for it.
  const retainedWrite = message.retain ? core.storeRetained(message) : undefined;
  const delivered = core.route(message);
  // An in-process bridge may have to commit the message before it is acknowledged.
  const held = core.consume(message, conn.clientId);
  if (core.events.listenerCount('published') > 0) core.events.emit('published', message, conn.clientId);
  if (core.security.hooks.listens('publish')) core.security.hooks.emit('publish', conn, message);

  if (qos === 0) {
    retainedWrite?.catch((err: unknown) => core.log.warn({ err, topic: message.topic }, 'retained message not stored'));
    held?.catch(() => undefined);
    return;
  }
  if (qos === 2) {
    session.inboundQos2.add(packetId);
    if (session.expiryInterval > 0) core.durable.putInbound(session.clientId, packetId);
  }
  const code = conn.level === 5 && delivered === 0 ? ReasonCode.NO_MATCHING_SUBSCRIBERS : ReasonCode.SUCCESS;
  // The ack chain: acknowledge only once the message and every queue it joined are stored
  // (and a bridge that forwards it has cached it).
  const stored = core.pendingCommit();
  const commit = held === undefined ? stored : stored === undefined ? held : Promise.all([stored, held]).then(() => undefined);
  if (commit === undefined && retainedWrite === undefined) return acknowledge(core, conn, type, packetId, code);
  acknowledgeLater(core, conn, type, packetId, code, commit, retainedWrite);
}

/** Acknowledge now, unless an earlier ack still waits (order is kept). */
function acknowledge(core: BrokerCore, conn: Connection, type: 'puback' | 'pubrec', packetId: number, code: number): void {
  if (conn.ackTail === null) conn.send(code === 0 ? { type, packetId } : { type, packetId, reasonCode: code });
  else acknowledgeLater(core, conn, type, packetId, code, undefined, undefined);
}

/**
 * Send an ack once `commit` and `retainedWrite` settle, after any earlier
 * pending ack of this connection: acks go out in PUBLISH order [MQTT-4.6.0-2].
 * A failed commit is never acknowledged as success: v5 clients get the
 * error's reason code, 3.1.1 clients (who have no negative ack) are
 * disconnected so they resend.
 */
function acknowledgeLater(
  core: BrokerCore,
  conn: Connection,
  type: 'puback' | 'pubrec',
  packetId: number,
  code: number,
  commit: Promise<void> | undefined,
  retainedWrite: Promise<void> | undefined,
): void {
  conn.inboundUnacked++;
  const previous = conn.ackTail;
  const settled = Promise.all([previous, commit, retainedWrite !== undefined ? retainedWrite.then(() => 0, (err: unknown) => err) : 0]);
  const tail = settled.then(
    ([, , retainedError]) => {
      conn.inboundUnacked--;
      let reasonCode = code;
      if (retainedError !== 0) {
        core.log.warn({ err: retainedError, clientId: conn.clientId }, 'retained message not stored');
        if (conn.level === 5) reasonCode = ReasonCode.QUOTA_EXCEEDED;
      }
      if (conn.closed) return;
      conn.send(reasonCode === 0 ? { type, packetId } : { type, packetId, reasonCode });
    },
    (err: unknown) => {
      conn.inboundUnacked--;
      core.commitFailed(conn, err);
      if (conn.closed) return;
      if (conn.level === 5) {
        conn.send({ type, packetId, reasonCode: ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR });
      } else {
        conn.disconnect(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, 'storage unavailable');
      }
    },
  );
  conn.ackTail = tail;
  void tail.then(() => {
    if (conn.ackTail === tail) conn.ackTail = null;
  });
}

/** [MQTT-3.3.2-?] v5 topic aliases: a topic sets the alias, an empty topic uses it. */
function resolveAlias(core: BrokerCore, conn: Connection, topic: string, alias: number): string {
  if (alias === 0 || alias > core.config.mqtt.topicAliasMaximum) {
    throw ternError('ERR_MQTT_TOPIC_ALIAS_INVALID', `alias ${alias}`);
  }
  const aliases = (conn.inboundAliases ??= new Map());
  if (topic.length > 0) {
    aliases.set(alias, topic);
    return topic;
  }
  const known = aliases.get(alias);
  if (known === undefined) throw ternError('ERR_MQTT_PROTOCOL', `unknown topic alias ${alias}`);
  return known;
}
