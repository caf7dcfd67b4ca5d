/**
 * BrokerCore: the state one broker instance owns (sessions, connections,
 * subscriptions, retained messages) and the glue between connections,
 * sessions and the router. No module-level state: two brokers in one
 * process share nothing.
 */
import type { EventEmitter } from 'node:events';
import { ReasonCode } from '../codec/constants.js';
import type { Packet, Will } from '../codec/types.js';
import type { TernConfig } from '../config/schema.js';
import type { TernError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Connection, ConnectionHost } from './connection.js';
import { dispatch } from './dispatch.js';
import { Message } from './message.js';
import { RetainedStore } from './retained.js';
import { Router } from './router.js';
import { Session, type DropReason, type Outbound, type SessionHost } from './session.js';
import { TopicTrie } from './topic-trie.js';
import type { SubscriptionEntry } from './session.js';

/** Counters kept cheaply on the hot path; exported by $SYS and metrics later. */
export class BrokerStats {
  messagesReceived = 0;
  messagesSent = 0;
  publishReceived = 0;
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
  readonly retained = new RetainedStore();
  readonly stats = new BrokerStats();
  readonly startedAt = Date.now();
  closing = false;
  #idCounter = 0;

  // ConnectionHost / SessionHost limits, flattened for the hot path.
  readonly maxPacketSize: number;
  readonly maxInflight: number;
  readonly maxQueued: number;
  readonly socketHighWaterMark: number;
  readonly drainTimeoutMs: number;
  readonly connectTimeoutMs: number;

  constructor(config: TernConfig, log: Logger, events: EventEmitter) {
    this.config = config;
    this.log = log;
    this.events = events;
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
    this.log.warn(
      { clientId: conn.clientId || undefined, address: conn.info.remoteAddress, port: conn.info.remotePort, code: err.code, reasonCode },
      `closing connection: ${err.message}`,
    );
    if (conn.isAwaitingConnect && err.code === 'ERR_MQTT_UNSUPPORTED_PROTOCOL') {
      // [MQTT-3.1.2-2] CONNACK 0x01 (3.1.1 format) before closing.
      conn.write(Buffer.from([0x20, 0x02, 0x00, 0x01]));
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
    this.log.debug({ clientId: conn.clientId, reason: conn.closeReason }, 'client disconnected');
    // [MQTT-3.1.2-8] the will goes out unless the client sent DISCONNECT.
    const will = session.will;
    session.will = undefined;
    if (will !== undefined && !conn.cleanDisconnect) this.#willOnClose(session, will);
    this.#scheduleSessionEnd(session);
    this.events.emit('clientDisconnected', conn.clientId, conn.closeReason);
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

  // ---- routing ----

  /** Route a message (from a client or the API) and keep it if retained. */
  publish(message: Message): number {
    this.stats.messagesReceived++;
    if (message.retain) this.retained.set(message);
    const n = this.router.route(message);
    this.stats.messagesSent += n;
    return n;
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
    if (will !== undefined) this.publishWill(will, session.clientId);
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
    for (const filter of session.subscriptions.keys()) this.trie.remove(filter, session.clientId);
    session.reset();
    if (this.sessions.get(session.clientId) === session) this.sessions.delete(session.clientId);
  }

  #scheduleSessionEnd(session: Session): void {
    const expiry = session.expiryInterval;
    if (expiry === 0) {
      this.endSession(session);
      return;
    }
    if (expiry === 0xffffffff) return;
    clearTimeout(session.expiryTimer);
    // setTimeout caps at 2^31-1 ms (~24.8 days); re-arm in steps for longer expiries.
    const due = Date.now() + expiry * 1000;
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
}
