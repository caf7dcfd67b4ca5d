/**
 * SUBSCRIBE [MQTT-3.8]: validate each filter, add or replace the session's
 * subscription, answer SUBACK with one code per filter in order
 * [MQTT-3.8.4-5], then send matching retained messages [MQTT-3.8.4-4].
 */
import { ReasonCode, SUBACK_FAILURE_V4 } from '../../codec/constants.js';
import type { QoS, SubackPacket, SubscribePacket } from '../../codec/types.js';
import { isPromise } from '../../hooks/registry.js';
import type { MaybePromise, Verdict } from '../../hooks/types.js';
import { ternError } from '../../errors.js';
import type { Connection } from '../connection.js';
import type { BrokerCore } from '../core.js';
import type { Session, SubscriptionEntry } from '../session.js';
import { hasWildcard, isValidTopicFilter, parseSharedFilter } from '../topic.js';

export function handleSubscribe(core: BrokerCore, conn: Connection, packet: SubscribePacket): void {
  // Ask the authorization hooks about every filter first; wait (holding later packets) if one answers later.
  const hooks = core.security.hooks;
  const verdicts: Array<MaybePromise<Verdict>> = [];
  let later = false;
  for (const sub of packet.subscriptions) {
    const v = hooks.authorizeSubscribe(conn, sub.filter, sub.qos);
    if (isPromise(v)) later = true;
    verdicts.push(v);
  }
  if (!later) return subscribe(core, conn, packet, verdicts as Verdict[]);
  conn.hold();
  Promise.all(verdicts).then(
    (v) => {
      if (conn.closed) return;
      subscribe(core, conn, packet, v);
      conn.release();
    },
    (err: unknown) => core.onProtocolError(conn, ternError('ERR_MQTT_NOT_AUTHORIZED', String(err), { cause: err })),
  );
}

function subscribe(core: BrokerCore, conn: Connection, packet: SubscribePacket, verdicts: Verdict[]): void {
  const session = conn.session!;
  const mqtt = core.config.mqtt;
  const v5 = conn.level === 5;
  const maxLevels = core.config.limits.maxTopicLevels;
  const subscriptionId = packet.properties?.subscriptionIdentifiers?.[0];
  const codes: number[] = [];
  const retainedFor: SubscriptionEntry[] = [];

  for (let i = 0; i < packet.subscriptions.length; i++) {
    const sub = packet.subscriptions[i]!;
    const filter = sub.filter;
    const verdict = verdicts[i]!;
    if (!verdict.allowed) {
      codes.push(v5 ? verdict.reasonCode : SUBACK_FAILURE_V4);
      continue;
    }
    const shared = parseSharedFilter(filter);
    const inner = shared ? shared.filter : filter;
    if (shared === null || filter.length > core.config.limits.maxTopicLength || !isValidTopicFilter(inner, maxLevels)) {
      codes.push(v5 ? ReasonCode.TOPIC_FILTER_INVALID : SUBACK_FAILURE_V4);
      continue;
    }
    if (shared && !mqtt.sharedSubscriptions) {
      codes.push(v5 ? ReasonCode.SHARED_SUBSCRIPTIONS_NOT_SUPPORTED : SUBACK_FAILURE_V4);
      continue;
    }
    if (!mqtt.wildcardSubscriptions && hasWildcard(inner)) {
      codes.push(v5 ? ReasonCode.WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED : SUBACK_FAILURE_V4);
      continue;
    }
    if (subscriptionId !== undefined && !mqtt.subscriptionIdentifiers) {
      codes.push(ReasonCode.SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED);
      continue;
    }
    if (shared && sub.noLocal) {
      // [MQTT-3.8.3-4] no local on a shared subscription is a protocol error: DISCONNECT.
      throw ternError('ERR_MQTT_PROTOCOL', 'no local on a shared subscription');
    }
    const maxSubs = core.config.limits.maxSubscriptionsPerClient;
    if (maxSubs > 0 && session.subscriptions.size >= maxSubs && !session.subscriptions.has(filter)) {
      codes.push(v5 ? ReasonCode.QUOTA_EXCEEDED : SUBACK_FAILURE_V4);
      continue;
    }
    const qos = (sub.qos < mqtt.maxQos ? sub.qos : mqtt.maxQos) as QoS;
    const entry: SubscriptionEntry = {
      session,
      filter,
      qos,
      noLocal: sub.noLocal,
      retainAsPublished: sub.retainAsPublished,
      retainHandling: sub.retainHandling,
      subscriptionId,
    };
    const existed = core.trie.add(filter, session.clientId, entry);
    session.subscriptions.set(filter, entry);
    if (session.expiryInterval > 0) core.durable.putSubscription(session.clientId, entry);
    codes.push(qos);
    // Retained: never on a shared subscription [MQTT-4.8.2-?]; retain handling 1 only for new ones; 2 never.
    if (!shared && (sub.retainHandling === 0 || (sub.retainHandling === 1 && !existed))) retainedFor.push(entry);
    if (core.events.listenerCount('subscribed') > 0) core.events.emit('subscribed', session.clientId, filter, qos);
    if (core.security.hooks.listens('subscribe')) core.security.hooks.emit('subscribe', conn, filter, qos);
  }

  const suback = { type: 'suback' as const, packetId: packet.packetId, reasonCodes: codes };
  // SUBACK once the subscriptions are stored (and in a cluster, announced); then the retained messages [MQTT-3.8.4-4].
  const pending = core.pendingCommit();
  if (pending === undefined && retainedFor.length === 0) {
    conn.send(suback);
    return;
  }
  afterSubscribe(core, conn, suback, retainedFor, subscriptionId, pending).catch((err: unknown) => {
    core.log.error({ err, clientId: session.clientId }, 'subscribe failed');
    if (!conn.closed) conn.disconnect(ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR, 'storage unavailable');
  });
}

async function afterSubscribe(
  core: BrokerCore,
  conn: Connection,
  suback: SubackPacket,
  retainedFor: SubscriptionEntry[],
  subscriptionId: number | undefined,
  pending: Promise<void> | undefined,
): Promise<void> {
  if (pending !== undefined) await pending;
  if (conn.closed) return;
  conn.send(suback);
  const ids = subscriptionId !== undefined ? [subscriptionId] : undefined;
  for (const entry of retainedFor) {
    const messages = await core.matchRetained(entry.filter);
    const now = Date.now();
    for (const message of messages) {
      if (message.isExpired(now) || entry.session.ended) continue;
      // Retained messages on subscribe wait for the client to keep up rather than
      // overflow its capped queue (which would drop them).
      if (conn.congested || entry.session.queue.length >= (core.maxQueued >> 1 || 1)) await roomFor(core, conn, entry.session);
      if (conn.closed) return;
      const qos = (entry.qos < message.qos ? entry.qos : message.qos) as QoS;
      // [MQTT-3.3.1-8] retained messages sent on subscribe keep the retain flag.
      entry.session.deliver(message, qos, true, ids);
    }
  }
  if (core.durable.dirty) core.durable.flush().catch((err: unknown) => core.durable.onBackgroundError(err));
}

/** Resolves once the connection drained and its session queue is below half its cap (or it closed). */
async function roomFor(core: BrokerCore, conn: Connection, session: Session): Promise<void> {
  const half = core.maxQueued >> 1 || 1;
  while (!conn.closed && (conn.congested || session.queue.length >= half)) {
    await new Promise<void>((resolve) => {
      if (!conn.congested) {
        setTimeout(resolve, 2);
        return;
      }
      const done = (): void => {
        conn.stream.off('drain', done);
        conn.stream.off('close', done);
        resolve();
      };
      conn.stream.once('drain', done);
      conn.stream.once('close', done);
    });
  }
}
