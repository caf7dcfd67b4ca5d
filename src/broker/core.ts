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
import { Durable, clientFromStored, willFromStored } from './durable.js';
import { Message } from './message.js';
import { Router } from './router.js';
import { topicMatches } from './topic.js';
import { Session, type DropReason, type Outbound, type SessionHost } from './session.js';
import { TopicTrie } from './topic-trie.js';
import type { Cluster } from '../cluster/cluster.js';
import { createClusterLink } from './cluster-link.js';
import type { SessionRecord, StoredMessage } from '../persistence/types.js';
import type { SubscriptionEntry } from './session.js';

/**
 * A consumer that must hold a message before its publisher is acknowledged
 * (an in-process bridge caching what it forwards). Called for every message
 * a client or the API publishes (not $SYS housekeeping), after routing. A
 * promise it returns delays the QoS 1/2 acknowledgement of a client's
 * PUBLISH until it settles; a rejection fails the acknowledgement as a
 * failed storage commit does. It must not throw.
 */
export type DurableConsumer = (message: Message, clientId: string | undefined) => Promise<void> | undefined;

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
  /** QoS 1/2 publishes refused because their storage commit failed (disk full, store down). */
  commitFailures = 0;
}

export class BrokerCore implements ConnectionHost, SessionHost {
  #config: TernConfig;
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
  /** Set while this cluster node adopts a dead node's sessions: local publishes they must get later. */
  adoptionTap: ((message: Message) => void) | null = null;
  /** This node's cluster membership (cluster.enabled), started by start(). */
  readonly cluster: Cluster | null;
  #consumers: DurableConsumer[] = [];
  #commitFailureLoggedAt = 0;
  #commitFailuresLogged = 0;

  // ConnectionHost / SessionHost limits, flattened for the hot path; setConfig() re-reads them.
  maxPacketSize = 0;
  maxInflight = 0;
  maxQueued = 0;
  socketHighWaterMark = 0;
  drainTimeoutMs = 0;
  connectTimeoutMs = 0;

  constructor(config: TernConfig, log: Logger, events: EventEmitter, persistence: Persistence) {
    this.#config = config;
    this.log = log;
    this.events = events;
    // The memory backend commits synchronously: no reason to wait for a group.
    this.router.strategy = config.mqtt.sharedSubscriptionStrategy;
    this.durable = new Durable(persistence, config.storage.backend === 'memory' ? 0 : config.storage.durability === 'full' ? 4 : 2);
    this.durable.onBackgroundError = (err) => this.log.error({ err }, 'storage write failed');
    this.cluster = config.cluster.enabled ? createClusterLink(this) : null;
    this.#flattenLimits();
  }

  /** The configuration in effect; a live reload replaces it as a whole (setConfig). Read it at use time. */
  get config(): TernConfig {
    return this.#config;
  }

  /**
   * Run on `config` from now on (a live reload: broker.reload() passes the
   * running config with only the live sections replaced). Connections
   * already open keep the packet-size limit and connect timeout they started with.
   */
  setConfig(config: TernConfig): void {
    this.#config = config;
    this.#flattenLimits();
  }

  #flattenLimits(): void {
    const l = this.#config.limits;
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
    if (will !== undefined && !conn.cleanDisconnect) this.willOnClose(session, will);
    if (will !== undefined && this.cluster !== null) this.cluster.setWill(session.clientId, undefined);
    if (session.expiryInterval > 0) this.durable.putSession(session);
    this.scheduleSessionEnd(session);
    this.events.emit('clientDisconnected', conn.clientId, conn.closeReason);
    if (this.security.hooks.listens('disconnect')) this.security.hooks.emit('disconnect', conn, conn.closeReason);
  }

  /**
   * A QoS 1/2 publish was refused because its commit failed. Logged when
   * failures start and then at most every 10 s with the count, so a full
   * disk does not also flood the log.
   */
  commitFailed(conn: Connection, err: unknown): void {
    const total = ++this.stats.commitFailures;
    const now = Date.now();
    if (now - this.#commitFailureLoggedAt < 10_000) return;
    this.log.error(
      { err, clientId: conn.clientId, refused: total - this.#commitFailuresLogged, total },
      'storage commit failed; publishes not acknowledged (logged again every 10 s while it lasts)',
    );
    this.#commitFailureLoggedAt = now;
    this.#commitFailuresLogged = total;
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

  /**
   * Route a message to matching sessions, and in a cluster to the other
   * nodes with matching subscribers; returns how many sessions (and nodes)
   * it went to.
   */
  route(message: Message, system = false): number {
    const cluster = this.cluster;
    let n: number;
    if (cluster === null || system) {
      n = this.router.route(message);
    } else {
      n = this.router.route(message, cluster.plan(message.topic));
      // $SYS is per node; everything else also goes to the nodes with subscribers.
      if (cluster.hasTargets) n += cluster.forward(this.#forwardable(message), message.origin);
      if (this.adoptionTap !== null) this.adoptionTap(message);
    }
    if (!system) {
      this.stats.messagesReceived++;
      this.stats.messagesSent += n;
    }
    return n;
  }

  addDurableConsumer(consumer: DurableConsumer): void {
    this.#consumers = [...this.#consumers, consumer];
  }

  removeDurableConsumer(consumer: DurableConsumer): void {
    this.#consumers = this.#consumers.filter((c) => c !== consumer);
  }

  /**
   * Hand a published message to the durable consumers; returns a promise when
   * one of them must commit it before the publisher is acknowledged.
   */
  consume(message: Message, clientId: string | undefined): Promise<void> | undefined {
    const consumers = this.#consumers;
    if (consumers.length === 0) return undefined;
    let held: Promise<void> | undefined;
    let all: Array<Promise<void>> | undefined;
    for (let i = 0; i < consumers.length; i++) {
      const p = consumers[i]!(message, clientId);
      if (p === undefined) continue;
      if (held === undefined) held = p;
      else (all ??= [held]).push(p);
    }
    return all === undefined ? held : Promise.all(all).then(() => undefined);
  }

  /** The stored form of a message another node routes (its id there is its own). */
  #forwardable(message: Message): StoredMessage {
    message.compact();
    const stored: StoredMessage = { id: 0, topic: message.topic, payload: message.payload, qos: message.qos, retain: message.retain, createdAt: Date.now() };
    if (message.properties !== undefined) stored.properties = message.properties;
    if (message.expiresAt !== undefined) stored.expiresAt = message.expiresAt;
    return stored;
  }

  /**
   * What an acknowledgement must wait for: buffered storage changes (flushed
   * now) and, in a cluster, route updates and messages forwarded to other
   * nodes. Undefined when nothing is pending.
   */
  pendingCommit(): Promise<void> | undefined {
    const stored = this.durable.dirty ? this.durable.flush() : undefined;
    const cluster = this.cluster === null ? undefined : this.cluster.pendingFlush();
    if (cluster === undefined) return stored;
    if (stored === undefined) return cluster;
    return Promise.all([stored, cluster]).then(() => undefined);
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
    if (!system) {
      // No publisher waits for an acknowledgement here: a consumer's commit settles on its own.
      this.consume(message, message.origin)?.catch(() => undefined);
      if (this.events.listenerCount('published') > 0) this.events.emit('published', message, message.origin);
    }
    return n;
  }

  /**
   * Retained messages matching `filter`: the store, overlaid with retained
   * writes not yet committed (so a subscribe right after a publish sees it).
   */
  async matchRetained(filter: string): Promise<Message[]> {
    // A write that commits while the store is read may be missed by the read and gone from the
    // pending map after it: the pending writes from before the read count too (later ones win).
    const pending = new Map(this.durable.pendingRetained);
    const stored: Message[] = [];
    for await (const m of this.durable.persistence.matchRetained(filter)) stored.push(Durable.toMessage(m));
    for (const [topic, message] of this.durable.pendingRetained) pending.set(topic, message);
    const out = stored.filter((m) => !pending.has(m.topic));
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
  willOnClose(session: Session, will: Will): void {
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

  /** Remove a session and all its subscriptions; `disown`: a cluster forgets who held it (not on a clean start). */
  endSession(session: Session, disown = true): void {
    if (session.ended) return;
    if (disown && this.cluster !== null) this.cluster.disown(session.clientId);
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

  /** @internal end the session when its expiry runs out (now for expiry 0). */
  scheduleSessionEnd(session: Session, disconnectedAt = Date.now()): void {
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

  /** Rebuild one stored session (its subscriptions and queues follow); a will left by a crash goes to `crashed`. */
  #restoreRecord(record: SessionRecord, now: number, crashed: Array<{ session: Session; will: Will }>): Session {
    const session = this.newSession(record.clientId);
    session.stored = true;
    // Delivery-time ACL checks use the stored owner until the client reconnects.
    session.client = clientFromStored(record);
    session.expiryInterval = record.expiryInterval;
    session.protocolLevel = record.protocolLevel;
    session.disconnectedAt = record.disconnectedAt ?? now;
    if (record.will !== undefined) {
      const will = willFromStored(record.will);
      if (record.disconnectedAt === null) crashed.push({ session, will });
      else if (record.will.delayInterval > 0) session.pendingWill = will;
    }
    this.scheduleSessionEnd(session, record.disconnectedAt ?? now);
    return session;
  }

  /**
   * Load one session from the store into memory (a cluster node taking it
   * over or adopting it): subscriptions, queues, QoS 2 ids; a will left
   * pending or by a crash is scheduled as at start-up. `routed` false keeps
   * its subscriptions out of the trie (the caller adds them later).
   */
  async loadStoredSession(clientId: string, routed = true): Promise<Session | undefined> {
    const persistence = this.durable.persistence;
    const record = await persistence.getSession(clientId);
    const prepared = this.sessions.get(clientId);
    let buffered: Outbound[] = [];
    if (prepared !== undefined && prepared.preparing) {
      // What arrived while the other node let go comes after the stored state.
      buffered = [...prepared.queue];
      this.#dropPrepared(prepared);
    }
    if (record === undefined || this.sessions.has(clientId)) return this.sessions.get(clientId);
    const crashed: Array<{ session: Session; will: Will }> = [];
    const session = this.#restoreRecord(record, Date.now(), crashed);
    for (const subscription of await persistence.getSubscriptions(clientId)) {
      const entry: SubscriptionEntry = { session, ...subscription, subscriptionId: subscription.subscriptionId };
      if (routed) this.trie.add(subscription.filter, clientId, entry);
      session.subscriptions.set(subscription.filter, entry);
    }
    await this.durable.loadOutbound(session, new Map());
    for (const id of await persistence.loadInbound(clientId)) session.inboundQos2.add(id);
    const pending = session.pendingWill;
    session.pendingWill = undefined;
    if (pending !== undefined) this.willOnClose(session, pending);
    for (const c of crashed) {
      this.willOnClose(session, c.will);
      this.durable.putSession(session);
    }
    for (const out of buffered) session.deliver(out.message, out.qos, out.retain, out.subscriptionIds);
    return session;
  }

  /**
   * First step of taking a persistent session over from another cluster
   * node: route its stored subscriptions here before that node lets go, so
   * nothing published meanwhile misses it (duplicates are possible: at
   * least once across a take-over). loadStoredSession() completes it.
   */
  async prepareSession(clientId: string): Promise<void> {
    if (this.sessions.has(clientId)) return;
    const subscriptions = await this.durable.persistence.getSubscriptions(clientId);
    if (subscriptions.length === 0 || this.sessions.has(clientId)) return;
    const session = this.newSession(clientId);
    session.preparing = true;
    for (const subscription of subscriptions) {
      const entry: SubscriptionEntry = { session, ...subscription, subscriptionId: subscription.subscriptionId };
      this.trie.add(subscription.filter, clientId, entry);
      session.subscriptions.set(subscription.filter, entry);
    }
    await this.cluster?.pendingFlush();
  }

  /** A prepared session's connection went away before it completed. */
  abandonPrepared(clientId: string): void {
    const session = this.sessions.get(clientId);
    if (session !== undefined && session.preparing) this.#dropPrepared(session);
  }

  #dropPrepared(session: Session): void {
    session.preparing = false;
    session.ended = true;
    for (const filter of session.subscriptions.keys()) this.trie.remove(filter, session.clientId);
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

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
    const cluster = this.cluster;
    if (cluster !== null) {
      await cluster.start();
      durable.idSource = () => cluster.ids.next();
    }
    // A cluster node restores only the sessions it owns (the others belong to live nodes).
    const records: SessionRecord[] = [];
    for await (const record of durable.persistence.loadSessions()) {
      if (cluster !== null) records.push(record);
      else this.#restoreRecord(record, now, crashed);
    }
    if (cluster !== null) {
      const owned = await cluster.ownedSessions(records.map((r) => r.clientId));
      for (const record of records) if (owned.has(record.clientId)) this.#restoreRecord(record, now, crashed);
    }
    for await (const { clientId, subscription } of durable.persistence.loadSubscriptions()) {
      const session = this.sessions.get(clientId);
      if (session === undefined) continue;
      const entry: SubscriptionEntry = { session, ...subscription, subscriptionId: subscription.subscriptionId };
      this.trie.add(subscription.filter, clientId, entry);
      session.subscriptions.set(subscription.filter, entry);
    }
    await durable.loadQueues(this.sessions);
    // Delayed wills left pending by a restart go out when their session ends or now, whichever the record allows.
    for (const session of this.sessions.values()) {
      if (session.pendingWill !== undefined) {
        const will = session.pendingWill;
        session.pendingWill = undefined;
        this.willOnClose(session, will);
      }
    }
    for (const { session, will } of crashed) {
      this.willOnClose(session, will);
      durable.putSession(session); // now disconnected: the will must not go out again
    }
    if (cluster !== null) {
      // Wills of clean sessions this node had open when it died last.
      for (const [clientId, will] of await cluster.leftoverWills()) if (!this.sessions.has(clientId)) this.publishWill(will, clientId);
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
    await this.durable.flush().catch(() => {});
    await this.cluster?.close();
    await this.security?.close();
    for (const session of this.sessions.values()) {
      clearTimeout(session.expiryTimer);
      clearTimeout(session.willTimer);
    }
    await this.durable.close();
  }
}
