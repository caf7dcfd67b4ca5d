/**
 * fast-check generators of valid packets for a protocol level. Values stay
 * inside what mqtt-packet 9 (the oracle) can generate and parse: will topics
 * non-empty, passwords only with a user name, reason codes from its tables,
 * user property names unique and non-numeric (it keeps them in an object).
 */
import fc from 'fast-check';
import type { ProtocolLevel } from '../../src/codec/constants.js';
import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  PublishPacket,
  QoS,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
  UserProperties,
  Will,
} from '../../src/codec/types.js';

/** Valid MQTT strings: any code point but U+0000, ASCII-heavy. */
export const mqttString = (maxLength = 12): fc.Arbitrary<string> =>
  fc
    .oneof(
      { weight: 3, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength }) },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength }) },
    )
    .filter((s) => !s.includes('\u0000'));

const bytes = (maxLength = 32): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ maxLength }).map((u) => Buffer.from(u));

const packetId = fc.integer({ min: 1, max: 0xffff });
const qos = fc.constantFrom<QoS>(0, 1, 2);
const bit = fc.constantFrom(0, 1);
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const subId = fc.integer({ min: 1, max: 268_435_455 });

const userProperties: fc.Arbitrary<UserProperties> = fc
  .uniqueArray(fc.tuple(mqttString(6), mqttString(8)), { minLength: 1, maxLength: 3, selector: (t) => t[0] })
  .map((pairs) => pairs.map(([k, v]): [string, string] => [`k${k}`, v]));

/** Optional-key record of properties; keys the packet may carry only. */
function props(model: { [K in keyof Properties]?: fc.Arbitrary<NonNullable<Properties[K]>> }): fc.Arbitrary<
  Properties | undefined
> {
  return fc.option(fc.record(model as Record<string, fc.Arbitrary<unknown>>, { requiredKeys: [] }), {
    nil: undefined,
  }) as fc.Arbitrary<Properties | undefined>;
}

const publishProps = props({
  payloadFormatIndicator: bit,
  messageExpiryInterval: u32,
  contentType: mqttString(),
  responseTopic: mqttString(),
  correlationData: bytes(8),
  subscriptionIdentifiers: fc.array(subId, { minLength: 1, maxLength: 3 }),
  topicAlias: fc.integer({ min: 1, max: 0xffff }),
  userProperties,
});

const willProps = props({
  payloadFormatIndicator: bit,
  messageExpiryInterval: u32,
  contentType: mqttString(),
  responseTopic: mqttString(),
  correlationData: bytes(8),
  willDelayInterval: u32,
  userProperties,
});

const connectProps = props({
  sessionExpiryInterval: u32,
  authenticationMethod: mqttString(),
  authenticationData: bytes(8),
  requestProblemInformation: bit,
  requestResponseInformation: bit,
  receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
  topicAliasMaximum: u16,
  userProperties,
  maximumPacketSize: fc.integer({ min: 1, max: 0xffff_ffff }),
});

const connackProps = props({
  sessionExpiryInterval: u32,
  assignedClientIdentifier: mqttString(),
  serverKeepAlive: u16,
  authenticationMethod: mqttString(),
  authenticationData: bytes(8),
  responseInformation: mqttString(),
  serverReference: mqttString(),
  reasonString: mqttString(),
  receiveMaximum: fc.integer({ min: 1, max: 0xffff }),
  topicAliasMaximum: u16,
  maximumQoS: bit,
  retainAvailable: bit,
  userProperties,
  maximumPacketSize: fc.integer({ min: 1, max: 0xffff_ffff }),
  wildcardSubscriptionAvailable: bit,
  subscriptionIdentifierAvailable: bit,
  sharedSubscriptionAvailable: bit,
});

const ackProps = props({ reasonString: mqttString(), userProperties });
const subscribeProps = props({ subscriptionIdentifiers: subId.map((n) => [n]), userProperties });
const unsubscribeProps = props({ userProperties });
const disconnectProps = props({
  sessionExpiryInterval: u32,
  reasonString: mqttString(),
  userProperties,
  serverReference: mqttString(),
});
const authProps = props({
  authenticationMethod: mqttString(),
  authenticationData: bytes(8),
  reasonString: mqttString(),
  userProperties,
});

function withProps<T extends { properties?: Properties }>(p: T, properties: Properties | undefined): T {
  if (properties !== undefined && Object.keys(properties).length > 0) p.properties = properties;
  return p;
}

export function connectArb(level: ProtocolLevel): fc.Arbitrary<ConnectPacket> {
  const will: fc.Arbitrary<Will | undefined> = fc.option(
    fc
      .record({
        topic: mqttString().filter((s) => s.length > 0),
        payload: bytes(),
        qos,
        retain: fc.boolean(),
        properties: level === 5 ? willProps : fc.constant(undefined),
      })
      .map(({ properties, ...w }) => withProps<Will>(w, properties)),
    { nil: undefined },
  );
  return fc
    .record({
      clean: fc.boolean(),
      keepalive: u16,
      clientId: mqttString(23),
      will,
      username: fc.option(mqttString(), { nil: undefined }),
      password: fc.option(bytes(12), { nil: undefined }),
      properties: level === 5 ? connectProps : fc.constant(undefined),
    })
    .map((r) => {
      const p: ConnectPacket = {
        type: 'connect',
        protocolName: level === 3 ? 'MQIsdp' : 'MQTT',
        protocolLevel: level,
        clean: r.clean,
        keepalive: r.keepalive,
        // 3.1 needs a client id, and mqtt-packet wants one when clean is false.
        clientId: r.clientId === '' && (level === 3 || !r.clean) ? 'c' : r.clientId,
      };
      if (r.will) p.will = r.will;
      if (r.username !== undefined) {
        p.username = r.username;
        if (r.password !== undefined) p.password = r.password;
      }
      return withProps(p, r.properties);
    });
}

export function connackArb(level: ProtocolLevel): fc.Arbitrary<ConnackPacket> {
  return fc
    .record({
      sessionPresent: fc.boolean(),
      reasonCode: level === 5 ? fc.constantFrom(0, 0x80, 0x84, 0x85, 0x86, 0x87, 0x8a, 0x97) : fc.integer({ min: 0, max: 5 }),
      properties: level === 5 ? connackProps : fc.constant(undefined),
    })
    .map(({ properties, ...c }) => withProps<ConnackPacket>({ type: 'connack', ...c }, properties));
}

export function publishArb(level: ProtocolLevel, payloadMax = 64): fc.Arbitrary<PublishPacket> {
  return fc
    .record({
      topic: mqttString(24),
      payload: bytes(payloadMax),
      qos,
      retain: fc.boolean(),
      dup: fc.boolean(),
      packetId,
      properties: level === 5 ? publishProps : fc.constant(undefined),
    })
    .map((r) => {
      const p: PublishPacket = {
        type: 'publish',
        topic: r.topic,
        payload: r.payload,
        qos: r.qos,
        retain: r.retain,
        dup: r.qos > 0 && r.dup,
      };
      if (r.qos > 0) p.packetId = r.packetId;
      return withProps(p, r.properties);
    });
}

export function ackArb(level: ProtocolLevel): fc.Arbitrary<AckPacket> {
  return fc
    .record({
      type: fc.constantFrom<AckPacket['type']>('puback', 'pubrec', 'pubrel', 'pubcomp'),
      packetId,
      pubCode: fc.constantFrom(0, 0, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99),
      relCode: fc.constantFrom(0, 0, 0x92),
      properties: level === 5 ? ackProps : fc.constant(undefined),
    })
    .map((r) => {
      const p: AckPacket = { type: r.type, packetId: r.packetId };
      if (level === 5) p.reasonCode = r.type === 'puback' || r.type === 'pubrec' ? r.pubCode : r.relCode;
      return withProps(p, r.properties);
    });
}

export function subscribeArb(level: ProtocolLevel): fc.Arbitrary<SubscribePacket> {
  const sub = fc.record({
    filter: mqttString(),
    qos,
    noLocal: level === 5 ? fc.boolean() : fc.constant(false),
    retainAsPublished: level === 5 ? fc.boolean() : fc.constant(false),
    retainHandling: level === 5 ? fc.constantFrom<0 | 1 | 2>(0, 1, 2) : fc.constant<0>(0),
  });
  return fc
    .record({
      packetId,
      subscriptions: fc.array(sub, { minLength: 1, maxLength: 4 }),
      properties: level === 5 ? subscribeProps : fc.constant(undefined),
    })
    .map(({ properties, ...s }) => withProps<SubscribePacket>({ type: 'subscribe', ...s }, properties));
}

export function subackArb(level: ProtocolLevel): fc.Arbitrary<SubackPacket> {
  const code =
    level === 5
      ? fc.constantFrom(0, 1, 2, 0x80, 0x83, 0x87, 0x8f, 0x91, 0x97, 0x9e, 0xa1, 0xa2)
      : fc.constantFrom(0, 1, 2, 0x80);
  return fc
    .record({
      packetId,
      reasonCodes: fc.array(code, { minLength: 1, maxLength: 5 }),
      properties: level === 5 ? ackProps : fc.constant(undefined),
    })
    .map(({ properties, ...s }) => withProps<SubackPacket>({ type: 'suback', ...s }, properties));
}

export function unsubscribeArb(level: ProtocolLevel): fc.Arbitrary<UnsubscribePacket> {
  return fc
    .record({
      packetId,
      filters: fc.array(mqttString(), { minLength: 1, maxLength: 4 }),
      properties: level === 5 ? unsubscribeProps : fc.constant(undefined),
    })
    .map(({ properties, ...s }) => withProps<UnsubscribePacket>({ type: 'unsubscribe', ...s }, properties));
}

export function unsubackArb(level: ProtocolLevel): fc.Arbitrary<UnsubackPacket> {
  return fc
    .record({
      packetId,
      reasonCodes:
        level === 5
          ? fc.array(fc.constantFrom(0, 0x11, 0x80, 0x83, 0x87, 0x8f, 0x91), { minLength: 1, maxLength: 5 })
          : fc.constant<number[]>([]),
      properties: level === 5 ? ackProps : fc.constant(undefined),
    })
    .map(({ properties, ...s }) => withProps<UnsubackPacket>({ type: 'unsuback', ...s }, properties));
}

export function disconnectArb(level: ProtocolLevel): fc.Arbitrary<DisconnectPacket> {
  if (level !== 5) return fc.constant<DisconnectPacket>({ type: 'disconnect' });
  return fc
    .record({
      reasonCode: fc.constantFrom(0, 0x04, 0x80, 0x81, 0x82, 0x87, 0x8b, 0x8e, 0x93, 0x95, 0x98, 0x9c),
      properties: disconnectProps,
    })
    .map(({ properties, ...d }) => withProps<DisconnectPacket>({ type: 'disconnect', ...d }, properties));
}

export function authArb(): fc.Arbitrary<AuthPacket> {
  return fc
    .record({ reasonCode: fc.constantFrom(0, 0x18, 0x19), properties: authProps })
    .map(({ properties, ...a }) => withProps<AuthPacket>({ type: 'auth', ...a }, properties));
}

export function pingArb(): fc.Arbitrary<Packet> {
  return fc.constantFrom<Packet>({ type: 'pingreq' }, { type: 'pingresp' });
}

/** Every packet type valid at `level` (AUTH only for 5). */
export function packetArb(level: ProtocolLevel): fc.Arbitrary<Packet> {
  const arbs: Array<fc.Arbitrary<Packet>> = [
    connectArb(level),
    connackArb(level),
    publishArb(level),
    ackArb(level),
    subscribeArb(level),
    subackArb(level),
    unsubscribeArb(level),
    unsubackArb(level),
    pingArb(),
    disconnectArb(level),
  ];
  if (level === 5) arbs.push(authArb());
  return fc.oneof(...arbs);
}
