/**
 * The public broker: createBroker(options) -> Broker with listen(), close(),
 * publish(), handle() and typed events. All state lives in this instance's
 * BrokerCore; nothing is shared between brokers in one process.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ReasonCode } from '../codec/constants.js';
import type { Properties, QoS } from '../codec/types.js';
import { resolveConfig } from '../config/load.js';
import type { TernConfig, TernConfigInput } from '../config/schema.js';
import { ternError } from '../errors.js';
import { createLogger, type Logger } from '../observability/logger.js';
import type { Listener, ListenerAddress } from '../transport/listener.js';
import { createListener } from '../transport/create.js';
import { createPersistence } from '../persistence/create.js';
import type { Persistence } from '../persistence/persistence.js';
import { Connection, type ConnectionInfo } from './connection.js';
import { BrokerCore } from './core.js';
import { Message } from './message.js';
import { isValidTopicName } from './topic.js';

export interface BrokerOptions extends TernConfigInput {
  /** Use this logger instead of one built from `log`. */
  logger?: Logger;
  /** Use this store instead of one built from `storage` (tests, embedding). */
  persistence?: Persistence;
  /** Move a corrupt SQLite store aside and start empty (`tern --repair`). */
  repair?: boolean;
}

export interface PublishOptions {
  topic: string;
  payload: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
}

export interface ClientInfo {
  address: string;
  protocolLevel: number;
  sessionPresent: boolean;
}

/** Events a Broker emits. */
export interface BrokerEvents {
  clientConnected: [clientId: string, info: ClientInfo];
  clientDisconnected: [clientId: string, reason: string | undefined];
  published: [message: Message, clientId: string | undefined];
  subscribed: [clientId: string, filter: string, qos: QoS];
  unsubscribed: [clientId: string, filter: string];
  messageDropped: [clientId: string, topic: string, reason: string];
}

export class Broker extends EventEmitter<BrokerEvents> {
  readonly config: TernConfig;
  readonly log: Logger;
  readonly #core: BrokerCore;
  #listeners: Listener[] = [];
  #addresses: ListenerAddress[] = [];
  #closed = false;
  #started = false;

  constructor(options: BrokerOptions = {}) {
    super();
    const { logger, persistence, repair, ...rest } = options;
    this.config = resolveConfig(rest);
    this.log = logger ?? createLogger(this.config.log);
    const store = persistence ?? createPersistence({ ...this.config.storage, repair: repair ?? false });
    this.#core = new BrokerCore(this.config, this.log, this as EventEmitter, store);
  }

  /** Addresses bound by listen(). */
  get addresses(): readonly ListenerAddress[] {
    return this.#addresses;
  }

  /** Connected clients right now. */
  get connectionCount(): number {
    return this.#core.connections.size;
  }

  /** @internal state for in-repo modules (admin API, $SYS, tests). */
  get core(): BrokerCore {
    return this.#core;
  }

  /** Open storage (restoring sessions), then bind every configured listener. */
  async listen(): Promise<ListenerAddress[]> {
    if (this.#closed) throw ternError('ERR_BROKER_CLOSED');
    if (this.#started) throw ternError('ERR_BROKER_STARTED');
    this.#started = true;
    await this.#core.start();
    const handler = (stream: Duplex, info: ConnectionInfo): void => this.handle(stream, info);
    const listeners = this.config.listeners.map((cfg) => createListener(cfg, handler));
    try {
      for (const listener of listeners) {
        this.#addresses.push(await listener.start());
        this.#listeners.push(listener);
      }
    } catch (err) {
      await Promise.all(this.#listeners.map((l) => l.close()));
      this.#listeners = [];
      this.#addresses = [];
      await this.#core.stop();
      this.#closed = true;
      throw err;
    }
    for (const a of this.#addresses) this.log.info({ listener: a.type, host: a.host, port: a.port }, `listening on ${a.type}://${a.host}:${a.port}`);
    return [...this.#addresses];
  }

  /** Serve one MQTT connection over any Duplex stream. */
  handle(stream: Duplex, info: ConnectionInfo): void {
    const core = this.#core;
    const max = this.config.limits.maxConnections;
    if (this.#closed || core.closing || (max > 0 && core.connections.size >= max)) {
      if (!this.#closed) this.log.warn({ address: info.remoteAddress, max }, 'connection refused: max connections reached');
      stream.destroy();
      return;
    }
    core.stats.connectionsTotal++;
    core.connections.add(new Connection(stream, info, core));
  }

  /** Publish as the broker itself (no client origin). */
  async publish(options: PublishOptions): Promise<void> {
    if (this.#closed) throw ternError('ERR_BROKER_CLOSED');
    if (!isValidTopicName(options.topic, this.config.limits.maxTopicLevels)) {
      throw ternError('ERR_MQTT_TOPIC_NAME_INVALID', options.topic);
    }
    const payload = typeof options.payload === 'string' ? Buffer.from(options.payload) : options.payload;
    if (!this.#started) throw ternError('ERR_BROKER_NOT_LISTENING');
    const expiry = options.properties?.messageExpiryInterval;
    this.#core.publish(
      new Message({
        topic: options.topic,
        payload,
        qos: options.qos ?? 0,
        retain: options.retain ?? false,
        properties: options.properties,
        expiresAt: expiry !== undefined ? Date.now() + expiry * 1000 : undefined,
      }),
    );
  }

  /**
   * Stop accepting, tell v5 clients the server is shutting down (0x8B),
   * close every connection and wait (bounded) for sockets to close.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const core = this.#core;
    core.closing = true;
    await Promise.all(this.#listeners.map((l) => l.close()));
    this.#listeners = [];
    const closing = [...core.connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.stream.destroyed) return resolve();
          conn.stream.once('close', () => resolve());
          conn.cleanDisconnect = true; // a broker shutdown is not the client's failure: no wills
          conn.disconnect(ReasonCode.SERVER_SHUTTING_DOWN, 'server shutting down');
        }),
    );
    const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
    await Promise.race([Promise.all(closing), timeout]);
    for (const conn of core.connections) conn.destroy('server shutting down');
    if (this.#started) await core.stop();
    this.log.info('broker closed');
  }
}

export function createBroker(options: BrokerOptions = {}): Broker {
  return new Broker(options);
}
