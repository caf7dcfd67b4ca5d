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
import { startOperations, type Operations } from '../ops/index.js';
import { banListOf, bridgeStatusOf } from '../ops/adapters.js';
import { createBrokerBridges, type Bridge } from '../bridge/bridge.js';
import type { OperationsOptions } from '../ops/types.js';
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
  /** Providers for the HTTP/operations side (bans, reload, bridges, BigQuery client options). */
  operations?: OperationsOptions;
}

export interface PublishOptions {
  topic: string;
  payload: Buffer | string;
  qos?: QoS;
  retain?: boolean;
  properties?: Properties;
  /** @internal broker housekeeping ($SYS): not counted in statistics nor emitted as `published`. */
  system?: boolean;
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
  #ops: Operations | null = null;
  #bridges: Bridge[] = [];
  #operationsOptions: OperationsOptions;

  constructor(options: BrokerOptions = {}) {
    super();
    const { logger, persistence, repair, operations, ...rest } = options;
    this.#operationsOptions = operations ?? {};
    this.config = resolveConfig(rest);
    this.log = logger ?? createLogger(this.config.log);
    const store = persistence ?? createPersistence({ ...this.config.storage, repair: repair ?? false });
    this.#core = new BrokerCore(this.config, this.log, this as EventEmitter, store);
  }

  /** @internal the running operations side (HTTP, $SYS, sinks), after listen(). */
  get operations(): Operations | null {
    return this.#ops;
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
    const listeners = this.config.listeners.map((cfg) => createListener(cfg, handler, this.log));
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
    try {
      this.#bridges = createBrokerBridges(this, this.config.bridges);
      for (const bridge of this.#bridges) await bridge.start();
      this.#ops = await startOperations(this, this.config, {
        bridges: () => this.#bridges.map(bridgeStatusOf),
        bans: banListOf(this.#core.security.bans),
        reload: () => this.reload().then((failures) => ({ reloaded: true, failures: failures.map((e) => e.message) })),
        ...this.#operationsOptions,
      });
    } catch (err) {
      // Nothing half-started stays behind: listeners, bridges and storage close again.
      await this.close();
      throw err;
    }
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
    if (core.security.bans.isBanned(info.remoteAddress)) {
      stream.destroy();
      return;
    }
    core.stats.connectionsTotal++;
    core.connections.add(new Connection(stream, info, core));
  }

  /**
   * Re-read what can change live (SIGHUP): listener certificates, password
   * and ACL files, plugin reload tasks. A broken file keeps the old one (and
   * is logged); the failures are returned.
   */
  async reload(): Promise<Error[]> {
    const failures: Error[] = [];
    for (const listener of this.#listeners) {
      await listener.reload().catch((err: unknown) => failures.push(err as Error));
    }
    if (this.#started) failures.push(...(await this.#core.security.reload()));
    this.log.info({ failures: failures.length }, 'configuration reloaded');
    return failures;
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
      options.system === true,
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
    await this.#ops?.close();
    this.#ops = null;
    for (const bridge of this.#bridges) await bridge.close().catch((err: unknown) => this.log.warn({ err }, 'bridge close failed'));
    this.#bridges = [];
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
