/**
 * BrokerCore: the state one broker instance owns (sessions, connections,
 * subscriptions, retained messages) and the glue between connections,
 * sessions and the router. No module-level state: two brokers in one
 * process share nothing.
 */
import type { EventEmitter } from 'node:events';
import { ReasonCode } from '../codec/constants.js';
import type { Packet, QoS, Will } from '../codec/types.js';
import type { TernConfig } from '../config/schema.js';
import type { TernError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Connection, ConnectionHost } from './connection.js';
import type { Persistence } from '../persistence/persistence.js';
import { createSecurity, type Security } from '../hooks/security.js';
import { isPromise } from '../hooks/registry.js';
import { dispatch } from './dispatch.js';
import { Durable, willFromStored } from './durable.js';
import { Message } from './message.js';
import { Router } from './router.js';
import { topicMatches } from './topic.js';
import { Session, type DropReason, type Outbound, type SessionHost } from './session.js';
import { TopicTrie } from './topic-trie.js';
import type { SubscriptionEntry } from './session.js';

/** Counters kept cheaply on the hot path; exported by $SYS and metrics later. */
export class BrokerStats {
  messagesReceived = 0;
  messagesSent = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** PUBLISH packets received from clients, by QoS. */
  publishReceivedByQos = [0, 0, 0];
  /** PUBLISH packets sent to clients, by QoS. */
  publishSentByQos = [0, 0, 0];
  authFailures = 0;
  dropped: Record<DropReason, number> = { queue_full: 0, offline_qos0: 0, expired: 0, too_large: 0 };
  connectionsTotal = 0;
}

export class BrokerCore implements ConnectionHost, SessionHost {
  readonly config: TernConfig;
  readonly log: Logger;
  readonly events: EventEmitter;
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Connection>();
  readonly trie = new TopicTrie<SubscriptionEntry>();
  readonly router = new Router(this.trie);
  readonly durable: Durable;
  readonly stats = new BrokerStats();
  readonly startedAt = Date.now();
  closing = false;
  /** Authentication, authorization, message hooks and bans; set by start(). */
  security!: Security;
  #idCounter = 0;
  #purgeTimer: NodeJS.Timeout | undefined = undefined;

  // ConnectionHost / SessionHost limits, flattened for the hot path.
  readonly maxPacketSize: number;
  readonly maxInflight: number;
  readonly maxQueued: number;
  readonly socketHighWaterMark: number;
  readonly drainTimeoutMs: number;
  readonly connectTimeoutMs: number;

  constructor(config: TernConfig, log: Logger, events: EventEmitter, persistence: Persistence) {
    this.config = config;
    this.log = log;
    this.events = events;
    // The memory backend commits synchronously: no reason to wait for a group.
    this.router.strategy = config.mqtt.sharedSubscriptionStrategy;
    this.durable = new Durable(persistence, config.storage.backend === 'memory' ? 0 : config.storage.durability === 'full' ? 4 : 2);
    this.durable.onBackgroundError = (err) => this.log.error({ err }, 'storage write failed');
    const l = config.limits;
    this.maxPacketSize = l.maxPacketSize;
    this.maxInflight = l.maxInflight;
    this.maxQueued = l.maxQueued;
    this.socketHighWaterMark = l.socketHighWaterMark;
    this.drainTimeoutMs = l.drainTimeoutMs;
    this.connectTimeoutMs = l.connectTimeoutMs;
  }

  // ---- ConnectionHost ----

  onPacket(conn: Connection, packet: Packet): void {
    dispatch(this, conn, packet);
  }

  onProtocolError(conn: Connection, err: TernError): void {
    const reasonCode = err.reasonCode ?? ReasonCode.UNSPECIFIED_ERROR;
    // Garbage again and again from one address earns a ban.
    if (reasonCode === ReasonCode.MALFORMED_PACKET || reasonCode === ReasonCode.PROTOCOL_ERROR) {
      this.security?.bans.recordFailure(conn.info.remoteAddress, 'malformed');
    }
    this.log.warn(
      { clientId: conn.clientId || undefined, address: conn.info.remoteAddress, port: conn.info.remotePort, code: err.code, reasonCode },
      `closing connection: ${err.message}`,
    );
    if (conn.isAwaitingConnect && err.code === 'ERR_MQTT_UNSUPPORTED_PROTOCOL') {
      // [MQTT-3.1.2-2] refuse in the client's format: v5 CONNACK 0x84 (empty properties), else 3.1.1 0x01.
      conn.write(Buffer.from(conn.requestedLevel === 5 ? [0x20, 0x03, 0x00, 0x84, 0x00] : [0x20, 0x02, 0x00, 0x01]));
      conn.closeReason = err.message;
      conn.end();
      return;
    }
    conn.disconnect(reasonCode, err.message, err.message);
  }

  onClosed(conn: Connection): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (session === null) return;
    conn.session = null;
    if (session.link === conn) session.detach();
    session.disconnectedAt = Date.now();
    this.log.debug({ clientId: conn.clientId, reason: conn.closeReason }, 'client disconnected');
    // [MQTT-3.1.2-8] the will goes out unless the client sent DISCONNECT.
    const will = session.will;
    session.will = undefined;
    if (will !== undefined && !conn.cleanDisconnect) this.#willOnClose(session, will);
    if (session.expiryInterval > 0) this.durable.putSession(session);
    this.#scheduleSessionEnd(session);
    this.events.emit('clientDisconnected', conn.clientId, conn.closeReason);
    if (this.security.hooks.listens('disconnect')) this.security.hooks.emit('disconnect', conn, conn.closeReason);
  }

  // ---- SessionHost ----

  onDrop(session: Session, out: Outbound, reason: DropReason): void {
    const n = ++this.stats.dropped[reason];
    // Log the first drop and then every 1000th, so a flood cannot flood the log.
    if (n === 1 || n % 1000 === 0) {
      this.log.warn({ clientId: session.clientId, topic: out.message.topic, reason, total: n }, 'message dropped');
    }
    this.events.emit('messageDropped', session.clientId, out.message.topic, reason);
  }

  storeOutbound(session: Session, out: Outbound): void {
    this.durable.putOutbound(session, out);
  }

  forgetOutbound(session: Session, out: Outbound): void {
    this.durable.deleteOutbound(session, out);
  }

  // ---- routing ----

  /** Route a message to matching sessions; returns how many it went to. */
  route(message: Message, system = false): number {
    const n = this.router.route(message);
    if (!system) {
      this.stats.messagesReceived++;
      this.stats.messagesSent += n;
    }
    return n;
  }

  /**
   * Store (or with an empty payload, clear) a retained message
   * [MQTT-3.3.1-5/10/11]. The promise settles when it is durable.
   */
  storeRetained(message: Message): Promise<void> {
    message.compact();
    return this.durable.setRetained(message);
  }

  /**
   * Route a message not from a client's PUBLISH (a will, the API, $SYS):
   * retained kept, errors logged. `system` messages ($SYS housekeeping) are
   * neither counted nor emitted as `published`, as Mosquitto does.
   */
  publish(message: Message, system = false): number {
    if (message.retain) {
      this.storeRetained(message).catch((err: unknown) => this.log.warn({ err, topic: message.topic }, 'retained message not stored'));
    }
    const n = this.route(message, system);
    if (!system && this.events.listenerCount('published') > 0) this.events.emit('published', message, message.origin);
    return n;
  }

  /**
   * Retained messages matching `filter`: the store, overlaid with retained
   * writes not yet committed (so a subscribe right after a publish sees it).
   */
  async matchRetained(filter: string): Promise<Message[]> {
    const pending = this.durable.pendingRetained;
    const out: Message[] = [];
    for await (const stored of this.durable.persistence.matchRetained(filter)) {
      if (!pending.has(stored.topic)) out.push(Durable.toMessage(stored));
    }
    for (const [topic, message] of pending) {
      if (message !== null && topicMatches(filter, topic)) out.push(message);
    }
    return out;
  }

  publishWill(will: Will, clientId: string): void {
    const props = will.properties;
    const expiry = props?.messageExpiryInterval;
    let properties = props;
    if (props !== undefined && props.willDelayInterval !== undefined) {
      properties = { ...props };
      delete properties.willDelayInterval;
    }
    this.publish(
      new Message({
        topic: will.topic,
        payload: will.payload,
        qos: will.qos,
        retain: will.retain,
        properties,
        expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : undefined,
        origin: clientId,
      }),
    );
  }

  /**
   * Publish the will now, or after its v5 delay if the session outlives the
   * connection: whichever comes first of the delay and the session's end
   * [MQTT-3.1.3-9]; a reconnect in time cancels it (see cancelPendingWill).
   */
  #willOnClose(session: Session, will: Will): void {
    const delay = will.properties?.willDelayInterval ?? 0;
    if (delay === 0 || session.expiryInterval === 0) {
      this.publishWill(will, session.clientId);
      return;
    }
    session.pendingWill = will;
    session.willTimer = setTimeout(() => this.#firePendingWill(session), Math.min(delay * 1000, 0x7fffffff));
    session.willTimer.unref();
  }

  #firePendingWill(session: Session): void {
    const will = session.pendingWill;
    session.pendingWill = undefined;
    clearTimeout(session.willTimer);
    session.willTimer = undefined;
    if (will === undefined) return;
    this.publishWill(will, session.clientId);
    if (session.stored && !session.ended && session.link === null) this.durable.putSession(session);
  }

  /** A client came back to its session before the will delay ran out. */
  cancelPendingWill(session: Session): void {
    clearTimeout(session.willTimer);
    session.willTimer = undefined;
    session.pendingWill = undefined;
  }

  // ---- sessions ----

  generateClientId(): string {
    return `${this.config.mqtt.autoIdPrefix}${Date.now().toString(36)}-${(++this.#idCounter).toString(36)}`;
  }

  newSession(clientId: string): Session {
    const session = new Session(clientId, this);
    this.sessions.set(clientId, session);
    return session;
  }

  /** Remove a session and all its subscriptions. */
  endSession(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    // A delayed will still waiting goes out when the session ends [MQTT-3.1.3-9].
    this.#firePendingWill(session);
    clearTimeout(session.expiryTimer);
    session.expiryTimer = undefined;
    const unfinished = session.unfinishedShared();
    for (const filter of session.subscriptions.keys()) this.trie.remove(filter, session.clientId);
    if (session.stored) this.durable.deleteSession(session.clientId);
    session.reset();
    // Shared-subscription messages this member never finished go to another member.
    for (const out of unfinished) this.router.handOff(out.message, out.group!);
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  #scheduleSessionEnd(session: Session, disconnectedAt = Date.now()): void {
    const expiry = session.expiryInterval;
    if (expiry === 0) {
      this.endSession(session);
      return;
    }
    if (expiry === 0xffffffff) return;
    clearTimeout(session.expiryTimer);
    // setTimeout caps at 2^31-1 ms (~24.8 days); re-arm in steps for longer expiries.
    const due = disconnectedAt + expiry * 1000;
    const arm = (): void => {
      const left = due - Date.now();
      if (left <= 0) {
        if (session.link === null) this.endSession(session);
        return;
      }
      session.expiryTimer = setTimeout(arm, Math.min(left, 0x7fffffff));
      session.expiryTimer.unref();
    };
    arm();
  }

  // ---- start-up and shutdown ----

  /**
   * Open the store and bring back persistent sessions: subscriptions into the
   * trie, queued and in-flight messages into their sessions, QoS 2 packet ids
   * awaiting PUBREL. Sessions left "connected" by a crash count as
   * disconnected now, and their wills go out as for any lost connection.
   */
  async start(): Promise<void> {
    this.security = await createSecurity(this.config, { log: this.log });
    this.#installReadCheck();
    const durable = this.durable;
    await durable.open();
    const now = Date.now();
    const purged = await durable.persistence.purgeExpired(now);
    const crashed: Array<{ session: Session; will: Will }> = [];
    for await (const record of durable.persistence.loadSessions()) {
      const session = this.newSession(record.clientId);
      session.stored = true;
      session.expiryInterval = record.expiryInterval;
      session.protocolLevel = record.protocolLevel;
      session.disconnectedAt = record.disconnectedAt ?? now;
      if (record.will !== undefined) {
        const will = willFromStored(record.will);
        if (record.disconnectedAt === null) crashed.push({ session, will });
        else if (record.will.delayInterval > 0) session.pendingWill = will;
      }
      this.#scheduleSessionEnd(session, record.disconnectedAt ?? now);
    }
    for await (const { clientId, subscription } of durable.persistence.loadSubscriptions()) {
      const session = this.sessions.get(clientId);
      if (session === undefined) continue;
      const entry: SubscriptionEntry = { session, ...subscription, subscriptionId: subscription.subscriptionId };
      this.trie.add(subscription.filter, clientId, entry);
      session.subscriptions.set(subscription.filter, entry);
    }
    const messages = new Map<number, Message>();
    for (const session of this.sessions.values()) {
      await durable.loadOutbound(session, messages);
      for (const id of await durable.persistence.loadInbound(session.clientId)) session.inboundQos2.add(id);
    }
    // Delayed wills left pending by a restart go out when their session ends or now, whichever the record allows.
    for (const session of this.sessions.values()) {
      if (session.pendingWill !== undefined) {
        const will = session.pendingWill;
        session.pendingWill = undefined;
        this.#willOnClose(session, will);
      }
    }
    for (const { session, will } of crashed) {
      this.#willOnClose(session, will);
      durable.putSession(session); // now disconnected: the will must not go out again
    }
    if (this.sessions.size > 0 || purged.sessions.length > 0) {
      this.log.info({ sessions: this.sessions.size, expired: purged.sessions.length }, 'sessions restored from storage');
    }
    this.#purgeTimer = setInterval(() => {
      durable.persistence.purgeExpired(Date.now()).catch((err: unknown) => this.log.warn({ err }, 'expiry purge failed'));
    }, 60_000);
    this.#purgeTimer.unref();
  }

  /**
   * ACL read rules apply at delivery. A hook answering asynchronously cannot
   * hold up routing: its delivery then follows when it answers.
   */
  #installReadCheck(): void {
    const hooks = this.security.hooks;
    if (!hooks.hasAuthorizeRead) return;
    this.router.readCheck = (entry, message) => {
      const client = entry.session.client;
      if (client === undefined) return true;
      const verdict = hooks.authorizeRead(client, message);
      if (!isPromise(verdict)) return verdict.allowed;
      Promise.resolve(verdict).then((v) => {
        if (!v.allowed || entry.session.ended) return;
        const qos = (entry.qos < message.qos ? entry.qos : message.qos) as QoS;
        entry.session.deliver(message, qos, entry.retainAsPublished ? message.retain : false, undefined);
      }, () => {});
      return false;
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.#purgeTimer);
    await this.security?.close();
    for (const session of this.sessions.values()) {
      clearTimeout(session.expiryTimer);
      clearTimeout(session.willTimer);
    }
    await this.durable.close();
  }
}
