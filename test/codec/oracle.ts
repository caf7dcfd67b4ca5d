/**
 * mqtt-packet as an independent oracle: converters between Tern's packet
 * objects and mqtt-packet's, and a normaliser giving the form a packet has
 * after an encode/decode round trip at a given level.
 */
import mqtt from 'mqtt-packet';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import type { Packet, Properties, UserProperties } from '../../src/codec/types.js';

// mqtt-packet objects are loosely shaped; this file is the only place that touches them.
export type Loose = Record<string, any>;

/** Property keys whose mqtt-packet value is a boolean. */
const BOOLEAN_PROPS = new Set([
  'payloadFormatIndicator',
  'requestProblemInformation',
  'requestResponseInformation',
  'retainAvailable',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifierAvailable',
  'sharedSubscriptionAvailable',
]);

/** Canonical (ascending property identifier) order, the order Tern encodes in. */
export const PROPERTY_ORDER: ReadonlyArray<keyof Properties> = [
  'payloadFormatIndicator',
  'messageExpiryInterval',
  'contentType',
  'responseTopic',
  'correlationData',
  'subscriptionIdentifiers',
  'sessionExpiryInterval',
  'assignedClientIdentifier',
  'serverKeepAlive',
  'authenticationMethod',
  'authenticationData',
  'requestProblemInformation',
  'willDelayInterval',
  'requestResponseInformation',
  'responseInformation',
  'serverReference',
  'reasonString',
  'receiveMaximum',
  'topicAliasMaximum',
  'topicAlias',
  'maximumQoS',
  'retainAvailable',
  'userProperties',
  'maximumPacketSize',
  'wildcardSubscriptionAvailable',
  'subscriptionIdentifierAvailable',
  'sharedSubscriptionAvailable',
];

function isEmpty(props: Properties | undefined): boolean {
  return props === undefined || Object.values(props).every((v) => v === undefined);
}

export function toMqttProperties(props: Properties | undefined): Loose | undefined {
  if (isEmpty(props)) return undefined;
  const out: Loose = {};
  for (const key of PROPERTY_ORDER) {
    const v = props![key];
    if (v === undefined) continue;
    if (key === 'userProperties') {
      const obj: Loose = Object.create(null);
      for (const [k, val] of v as UserProperties) {
        const prev = obj[k];
        if (prev === undefined) obj[k] = val;
        else if (Array.isArray(prev)) prev.push(val);
        else obj[k] = [prev, val];
      }
      out.userProperties = obj;
    } else if (key === 'subscriptionIdentifiers') {
      const ids = v as number[];
      out.subscriptionIdentifier = ids.length === 1 ? ids[0] : ids;
    } else if (key === 'subscriptionIdentifierAvailable') {
      out.subscriptionIdentifiersAvailable = v === 1;
    } else if (BOOLEAN_PROPS.has(key)) {
      out[key] = v === 1;
    } else {
      out[key] = v;
    }
  }
  return out;
}

export function fromMqttProperties(props: Loose | undefined): Properties | undefined {
  if (props === undefined || Object.keys(props).length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(props)) {
    if (key === 'userProperties') {
      const pairs: UserProperties = [];
      for (const k of Object.keys(v as Loose)) {
        const val = (v as Loose)[k] as string | string[];
        for (const one of Array.isArray(val) ? val : [val]) pairs.push([k, one]);
      }
      out.userProperties = pairs;
    } else if (key === 'subscriptionIdentifier') {
      out.subscriptionIdentifiers = Array.isArray(v) ? v : [v];
    } else if (key === 'subscriptionIdentifiersAvailable') {
      out.subscriptionIdentifierAvailable = v ? 1 : 0;
    } else if (typeof v === 'boolean') {
      out[key] = v ? 1 : 0;
    } else {
      out[key] = v;
    }
  }
  return out as Properties;
}

/** Tern packet -> mqtt-packet object for `generate(obj, { protocolVersion: level })`. */
export function toMqtt(p: Packet, level: ProtocolLevel): Loose {
  const v5 = level === 5;
  const props = v5 && 'properties' in p ? toMqttProperties(p.properties) : undefined;
  const withProps = (o: Loose): Loose => (props === undefined ? o : { ...o, properties: props });
  switch (p.type) {
    case 'connect': {
      const o: Loose = {
        cmd: 'connect',
        protocolId: p.protocolName,
        protocolVersion: p.protocolLevel,
        clean: p.clean,
        keepalive: p.keepalive,
        clientId: p.clientId,
      };
      if (p.will) {
        o.will = { topic: p.will.topic, payload: p.will.payload, qos: p.will.qos, retain: p.will.retain };
        const wp = p.protocolLevel === 5 ? toMqttProperties(p.will.properties) : undefined;
        if (wp) o.will.properties = wp;
      }
      if (p.username !== undefined) o.username = p.username;
      if (p.password !== undefined) o.password = p.password;
      const cp = p.protocolLevel === 5 ? toMqttProperties(p.properties) : undefined;
      if (cp) o.properties = cp;
      return o;
    }
    case 'connack':
      return withProps({
        cmd: 'connack',
        sessionPresent: p.sessionPresent,
        [v5 ? 'reasonCode' : 'returnCode']: p.reasonCode,
      });
    case 'publish':
      return withProps({
        cmd: 'publish',
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain,
        dup: p.dup,
        ...(p.qos > 0 ? { messageId: p.packetId } : {}),
      });
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp':
      return withProps({ cmd: p.type, messageId: p.packetId, reasonCode: p.reasonCode ?? 0 });
    case 'subscribe':
      return withProps({
        cmd: 'subscribe',
        messageId: p.packetId,
        subscriptions: p.subscriptions.map((s) =>
          v5
            ? { topic: s.filter, qos: s.qos, nl: s.noLocal, rap: s.retainAsPublished, rh: s.retainHandling }
            : { topic: s.filter, qos: s.qos },
        ),
      });
    case 'suback':
      return withProps({ cmd: 'suback', messageId: p.packetId, granted: p.reasonCodes });
    case 'unsubscribe':
      return withProps({ cmd: 'unsubscribe', messageId: p.packetId, unsubscriptions: p.filters });
    case 'unsuback':
      return withProps({ cmd: 'unsuback', messageId: p.packetId, granted: p.reasonCodes });
    case 'pingreq':
    case 'pingresp':
      return { cmd: p.type };
    case 'disconnect':
      return withProps({ cmd: 'disconnect', reasonCode: p.reasonCode ?? 0 });
    case 'auth':
      return withProps({ cmd: 'auth', reasonCode: p.reasonCode });
  }
}

/** mqtt-packet parse result -> Tern packet (in the normalised form). */
export function fromMqtt(o: Loose, level: ProtocolLevel): Packet {
  const v5 = level === 5;
  const props = v5 ? fromMqttProperties(o.properties as Loose | undefined) : undefined;
  const add = <T extends Packet>(p: T): T => {
    if (props !== undefined) (p as { properties?: Properties }).properties = props;
    return p;
  };
  switch (o.cmd as string) {
    case 'connect': {
      const pl = o.protocolVersion as ProtocolLevel;
      const p: Loose = {
        type: 'connect',
        protocolName: o.protocolId,
        protocolLevel: pl,
        clean: o.clean,
        keepalive: o.keepalive,
        clientId: o.clientId,
      };
      if (o.will) {
        p.will = { topic: o.will.topic, payload: o.will.payload, qos: o.will.qos, retain: o.will.retain };
        const wp = pl === 5 ? fromMqttProperties(o.will.properties) : undefined;
        if (wp) p.will.properties = wp;
      }
      if (o.username !== undefined) p.username = o.username;
      if (o.password !== undefined) p.password = o.password;
      const cp = pl === 5 ? fromMqttProperties(o.properties) : undefined;
      if (cp) p.properties = cp;
      return p as Packet;
    }
    case 'connack':
      return add({ type: 'connack', sessionPresent: o.sessionPresent, reasonCode: v5 ? o.reasonCode : o.returnCode });
    case 'publish': {
      const p: Loose = { type: 'publish', topic: o.topic, payload: o.payload, qos: o.qos, retain: o.retain, dup: o.dup };
      if (o.qos > 0) p.packetId = o.messageId;
      return add(p as Packet);
    }
    case 'puback':
    case 'pubrec':
    case 'pubrel':
    case 'pubcomp': {
      const p: Loose = { type: o.cmd, packetId: o.messageId };
      if (v5) p.reasonCode = o.reasonCode ?? 0;
      return add(p as Packet);
    }
    case 'subscribe':
      return add({
        type: 'subscribe',
        packetId: o.messageId,
        subscriptions: (o.subscriptions as Loose[]).map((s) => ({
          filter: s.topic,
          qos: s.qos,
          noLocal: v5 ? Boolean(s.nl) : false,
          retainAsPublished: v5 ? Boolean(s.rap) : false,
          retainHandling: v5 ? s.rh ?? 0 : 0,
        })),
      });
    case 'suback':
      return add({ type: 'suback', packetId: o.messageId, reasonCodes: o.granted });
    case 'unsubscribe':
      return add({ type: 'unsubscribe', packetId: o.messageId, filters: o.unsubscriptions });
    case 'unsuback':
      return add({ type: 'unsuback', packetId: o.messageId, reasonCodes: v5 ? o.granted : [] });
    case 'pingreq':
      return { type: 'pingreq' };
    case 'pingresp':
      return { type: 'pingresp' };
    case 'disconnect':
      return v5 ? add({ type: 'disconnect', reasonCode: o.reasonCode ?? 0 }) : { type: 'disconnect' };
    case 'auth':
      return add({ type: 'auth', reasonCode: o.reasonCode });
    default:
      throw new Error(`unexpected mqtt-packet cmd ${String(o.cmd)}`);
  }
}

/** Parse a byte stream with mqtt-packet; throws the parser's error. */
export function mqttParse(buf: Buffer, level: ProtocolLevel): Loose[] {
  const parser = mqtt.parser({ protocolVersion: level });
  const out: Loose[] = [];
  let error: Error | undefined;
  parser.on('packet', (p: Loose) => out.push(p));
  parser.on('error', (e: Error) => {
    error ??= e;
  });
  parser.parse(buf);
  if (error) throw error;
  return out;
}

export function mqttGenerate(p: Loose, level: ProtocolLevel): Buffer {
  return mqtt.generate(p as mqtt.Packet, { protocolVersion: level });
}

const ACK_TYPES = new Set(['puback', 'pubrec', 'pubrel', 'pubcomp']);
function dropEmptyProps<T extends { properties?: Properties }>(p: T): T {
  if (p.properties !== undefined && isEmpty(p.properties)) delete p.properties;
  return p;
}

/**
 * The packet as it must come back from encode -> decode at `level`: v5-only
 * fields dropped for 3/4, reason codes defaulted for 5, empty properties gone.
 */
export function normalize(p: Packet, level: ProtocolLevel): Packet {
  const c = structuredCloneWithBuffers(p) as Packet & { properties?: Properties; reasonCode?: number };
  if (c.type === 'connect') {
    const pl = c.protocolLevel;
    if (pl !== 5) {
      delete c.properties;
      if (c.will) delete c.will.properties;
    } else {
      dropEmptyProps(c);
      if (c.will) dropEmptyProps(c.will);
    }
    return c;
  }
  if (level !== 5) {
    delete c.properties;
    if (ACK_TYPES.has(c.type) || c.type === 'disconnect') delete c.reasonCode;
    if (c.type === 'subscribe') {
      for (const s of c.subscriptions) {
        s.noLocal = false;
        s.retainAsPublished = false;
        s.retainHandling = 0;
      }
    }
    if (c.type === 'unsuback') c.reasonCodes = [];
    if (c.type === 'suback') c.reasonCodes = c.reasonCodes.map((x) => (x >= 0x80 ? 0x80 : x));
    return c;
  }
  if (ACK_TYPES.has(c.type) || c.type === 'disconnect') c.reasonCode ??= 0;
  if (c.type !== 'pingreq' && c.type !== 'pingresp') dropEmptyProps(c);
  return c;
}

function structuredCloneWithBuffers(v: unknown): unknown {
  if (Buffer.isBuffer(v)) return Buffer.from(v);
  if (Array.isArray(v)) return v.map(structuredCloneWithBuffers);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = structuredCloneWithBuffers(x);
    return out;
  }
  return v;
}
