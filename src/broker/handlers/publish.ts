/**
 * Inbound PUBLISH [MQTT-3.3]: topic alias resolution and topic checks,
 * routing, retained storage, and the QoS 1/2 acknowledgement flows. QoS 2 is
 * routed once on first receipt; a resent PUBLISH with an id still awaiting
 * PUBREL is only acknowledged again [MQTT-4.3.3-?] (exactly once).
 */
import { isUtf8 } from 'node:buffer';
import { ReasonCode } from '../../codec/constants.js';
import type { PublishPacket } from '../../codec/types.js';
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
  if (!isValidTopicName(topic, core.config.limits.maxTopicLevels)) {
    throw ternError('ERR_MQTT_TOPIC_NAME_INVALID', JSON.stringify(topic.slice(0, 200)));
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
  if (qos === 2) {
    if (session.inboundQos2.has(packetId)) {
      // Duplicate of a message already routed: acknowledge only.
      conn.send({ type: 'pubrec', packetId });
      return;
    }
    if (conn.level === 5 && session.inboundQos2.size >= mqtt.receiveMaximum) {
      throw ternError('ERR_MQTT_RECEIVE_MAXIMUM_EXCEEDED'); // [MQTT-3.3.4-9]
    }
  }

  // [MQTT-3.3.2-?] payload format indicator 1: the payload must be UTF-8.
  if (props?.payloadFormatIndicator === 1 && !isUtf8(packet.payload)) {
    if (qos === 0) throw ternError('ERR_MQTT_PAYLOAD_FORMAT_INVALID');
    conn.send({ type: qos === 1 ? 'puback' : 'pubrec', packetId, reasonCode: ReasonCode.PAYLOAD_FORMAT_INVALID });
    return;
  }

  const expiry = props?.messageExpiryInterval;
  const message = new Message({
    topic,
    payload: packet.payload,
    qos,
    retain: packet.retain,
    properties: props,
    expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : undefined,
    origin: conn.clientId,
  });
  const delivered = core.publish(message);
  if (core.events.listenerCount('published') > 0) core.events.emit('published', message, conn.clientId);

  if (qos === 1) {
    if (conn.level === 5 && delivered === 0) {
      conn.send({ type: 'puback', packetId, reasonCode: ReasonCode.NO_MATCHING_SUBSCRIBERS });
    } else {
      conn.send({ type: 'puback', packetId });
    }
  } else if (qos === 2) {
    session.inboundQos2.add(packetId);
    if (conn.level === 5 && delivered === 0) {
      conn.send({ type: 'pubrec', packetId, reasonCode: ReasonCode.NO_MATCHING_SUBSCRIBERS });
    } else {
      conn.send({ type: 'pubrec', packetId });
    }
  }
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
