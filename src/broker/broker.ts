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
import type { OperationsOptions, ReadinessCheck } from '../ops/types.js';
import { createPersistence } from '../persistence/create.js';
import type { Persistence } from '../persistence/persistence.js';
import { Connection, type ConnectionInfo } from './connection.js';
import { BrokerCore } from './core.js';
import { Message } from './message.js';
import { ConnectionRate } from './rate-limit.js';
import { FD_RESERVE, FdBudget } from './fd-budget.js';
import { diffConfig, reloadFailure, tomlKey, withLive, type ReloadResult } from './reload.js';
import { isValidTopicName } from './topic.js';

export type { ReloadFailure, ReloadResult } from './reload.js';

export interface BrokerOptions extends TernConfigInput {
  /** Use this logger instead of one built from `log`. */
  logger?: Logger;
  /** Use this store instead of one built from `storage` (tests, embedding). */
  persistence?: Persistence;
  /** Move a corrupt SQLite store aside and start empty (`tern --repair`). */
  repair?: boolean;
  /** Providers for the HTTP/operations side (bans, reload, bridges, BigQuery client options). */
  operations?: OperationsOptions;
  /**
   * Where reload() gets the next configuration when called without one (the
   * CLI re-reads its -c file with the command-line overrides). It may throw
   * (ERR_CONFIG_READ/PARSE/INVALID): the reload is then refused.
   */
  loadConfig?: () => Promise<TernConfigInput>;
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
  readonly log: Logger;
  readonly #core: BrokerCore;
  #listeners: Listener[] = [];
  #addresses: ListenerAddress[] = [];
  #closed = false;
  #started = false;
  #ops: Operations | null = null;
  #bridges: Bridge[] = [];
  #operationsOptions: OperationsOptions;
  readonly #loadConfig: (() => Promise<TernConfigInput>) | undefined;
  /** The reload under way: reloads run one after another. */
  #reloading: Promise<unknown> = Promise.resolve();
  /** New connections per second by remote address (limits.max_connection_rate_per_address). */
  readonly #connectionRate = new ConnectionRate();
  /** Descriptors left for new connections (refuse before EMFILE, with a log line). */
  readonly #fds = new FdBudget();

  constructor(options: BrokerOptions = {}) {
    super();
    const { logger, persistence, repair, operations, loadConfig, ...rest } = options;
    this.#operationsOptions = operations ?? {};
    this.#loadConfig = loadConfig;
    const config = resolveConfig(rest);
    this.log = logger ?? createLogger(config.log);
    const store = persistence ?? createPersistence({ ...config.storage, repair: repair ?? false });
    this.#core = new BrokerCore(config, this.log, this as EventEmitter, store);
  }

  /** The configuration in effect (a reload replaces it with the live parts of a new one). */
  get config(): TernConfig {
    return this.#core.config;
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
    try {
      // Bridges before listeners: a message a client publishes is in a forwarding bridge's ack chain from the first connection.
      this.#bridges = createBrokerBridges(this, this.config.bridges);
      for (const bridge of this.#bridges) await bridge.start();
    } catch (err) {
      await this.close();
      throw err;
    }
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
      for (const bridge of this.#bridges) await bridge.close().catch(() => undefined);
      this.#bridges = [];
      await this.#core.stop();
      this.#closed = true;
      throw err;
    }
    for (const a of this.#addresses) this.log.info({ listener: a.type, host: a.host, port: a.port }, `listening on ${a.type}://${a.host}:${a.port}`);
    try {
      this.#ops = await startOperations(this, this.config, {
        bridges: () => this.#bridges.map(bridgeStatusOf),
        bans: banListOf(this.#core.security.bans),
        reload: () => this.reload(),
        ...this.#operationsOptions,
        readiness: [...clusterReadiness(this.#core), ...(this.#operationsOptions.readiness ?? [])],
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
    const fds = this.#fds;
    if (!fds.admit(core.connections.size, Date.now())) {
      // Refused while some descriptors are left, rather than closed unlogged by libuv at EMFILE.
      const refused = fds.refused(Date.now());
      if (refused > 0) {
        this.log.warn(
          { address: info.remoteAddress, refused, openFds: fds.open, limit: fds.limit, reserve: FD_RESERVE },
          'connection refused: file descriptors nearly exhausted (RLIMIT_NOFILE; EMFILE ahead); new connections are refused until some close (logged again every 10 s while it lasts)',
        );
      }
      stream.destroy();
      return;
    }
    const recovered = fds.admitted();
    if (recovered > 0) this.log.info({ refused: recovered }, 'accepting connections again: file descriptors freed');
    if (core.security.bans.isBanned(info.remoteAddress)) {
      stream.destroy();
      return;
    }
    const rate = this.config.limits.maxConnectionRatePerAddress;
    if (rate > 0 && !this.#connectionRate.admit(info.remoteAddress, rate, Date.now())) {
      // One line per second at most: a connection flood must not become a log flood.
      if (this.#connectionRate.refused === 1) {
        this.log.warn(
          { address: info.remoteAddress, max: rate },
          'connection refused: too many new connections per second from this address (further refusals this second are not logged)',
        );
      }
      stream.destroy();
      return;
    }
    core.stats.connectionsTotal++;
    core.connections.add(new Connection(stream, info, core));
  }

  /**
   * Reload the configuration (SIGHUP, POST /api/v1/reload). The next
   * configuration is `next`, else what `loadConfig` gives, else the running
   * one. It is validated first: if it does not load or validate, nothing
   * changes and the error is reported (`reloaded: false`). Then the files it
   * names are re-read (listener certificates, password and ACL files, plugin
   * reload tasks; a broken file keeps the old one), and the differences from
   * the running configuration are applied where they can be live (limits,
   * log level, $SYS interval, message-logging sinks) and listed as needing a
   * restart otherwise. Reloads run one at a time.
   */
  reload(next?: TernConfigInput): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(input: TernConfigInput | undefined): Promise<ReloadResult> {
    if (this.#closed) throw ternError('ERR_BROKER_CLOSED');
    const result: ReloadResult = { reloaded: true, applied: [], restartRequired: [], failures: [] };
    let next: TernConfig | undefined;
    try {
      const source = input ?? (await this.#loadConfig?.());
      if (source !== undefined) next = resolveConfig(source);
    } catch (err) {
      result.reloaded = false;
      result.failures.push(reloadFailure('config', err));
      this.log.error({ err }, 'configuration not reloaded; the running configuration stays');
      return result;
    }
    for (const [i, listener] of this.#listeners.entries()) {
      await listener.reload().catch((err: unknown) => result.failures.push(reloadFailure(`listeners[${i}]`, err)));
    }
    if (this.#started) for (const err of await this.#core.security.reload()) result.failures.push(reloadFailure('auth', err));
    if (next !== undefined) await this.#apply(next, result);
    const { applied, restartRequired, failures } = result;
    if (failures.length > 0) this.log.warn({ applied, restartRequired, failures }, 'configuration reloaded with failures');
    else this.log.info({ applied, restartRequired }, 'configuration reloaded');
    if (restartRequired.length > 0) this.log.warn({ restartRequired }, 'configuration changes that take effect only after a restart');
    return result;
  }

  /** Apply the live differences between the running configuration and `next` (see reload.ts). */
  async #apply(next: TernConfig, result: ReloadResult): Promise<void> {
    const running = this.config;
    const { live, restart } = diffConfig(running, next);
    result.restartRequired.push(...restart.map(tomlKey));
    if (live.size === 0) return;
    const sections = new Set(live.keys());
    const ops = this.#ops;
    if (ops !== null && (sections.has('sys') || sections.has('messageLog.file') || sections.has('messageLog.bigquery'))) {
      // Sinks first: one that fails to start keeps the running one, and its section its old value.
      for (const change of await ops.reconfigure(withLive(running, next, sections))) {
        if (change.error === undefined) continue;
        const section = `messageLog.${change.kind}`;
        sections.delete(section);
        result.failures.push(reloadFailure(tomlKey(['messageLog', change.kind]), change.error));
      }
    }
    this.#core.setConfig(withLive(running, next, sections));
    if (sections.has('log.level')) this.log.level = next.log.level;
    for (const section of sections) result.applied.push(...live.get(section)!.map(tomlKey));
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
   * Shut down, bounded by `limits.shutdown_grace_ms`: stop accepting and stop
   * reading from clients; wait for the publishes already read to be stored
   * and acknowledged (the ack chain) and for buffered storage changes to be
   * committed; then tell v5 clients the server is shutting down (0x8B),
   * close every connection and wait for the sockets to close. Whatever is
   * still open when the grace period ends is destroyed; storage closes last.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const core = this.#core;
    core.closing = true;
    const deadline = Date.now() + this.config.limits.shutdownGraceMs;
    await Promise.all(this.#listeners.map((l) => l.close()));
    this.#listeners = [];
    await this.#drain(deadline);
    await this.#ops?.close();
    this.#ops = null;
    for (const bridge of this.#bridges) await bridge.close().catch((err: unknown) => this.log.warn({ err }, 'bridge close failed'));
    this.#bridges = [];
    const closing = [...core.connections].map(
      (conn) =>
        new Promise<void>((resolve) => {
          if (conn.stream.destroyed) return resolve();
          conn.stream.once('close', () => resolve());
          conn.cleanDisconnect = true; // a broker shutdown is not the client's failure: no wills
          conn.disconnect(ReasonCode.SERVER_SHUTTING_DOWN, 'server shutting down');
        }),
    );
    // Connection.end() destroys a socket its peer leaves open after a second, so this wait is short in practice.
    await within(Promise.all(closing), Math.max(deadline - Date.now(), 1000));
    for (const conn of core.connections) conn.destroy('server shutting down');
    if (this.#started) await core.stop();
    this.log.info('broker closed');
  }

  /**
   * Stop reading from every client, then wait (until `deadline`) for the
   * acknowledgements still waiting on storage commits to go out, and for
   * storage changes nobody waits for to be committed.
   */
  async #drain(deadline: number): Promise<void> {
    const core = this.#core;
    const acks: Array<Promise<void>> = [];
    for (const conn of core.connections) {
      conn.quiesce();
      if (conn.ackTail !== null) acks.push(conn.ackTail);
    }
    if (this.#started && core.durable.dirty) acks.push(core.durable.flush().catch(() => undefined));
    if (acks.length === 0) return;
    const started = Date.now();
    const drained = await within(Promise.all(acks), deadline - started);
    const ms = Date.now() - started;
    if (drained) this.log.info({ waits: acks.length, ms }, 'shutdown: acknowledgements drained');
    else this.log.warn({ ms }, 'shutdown: grace period over before every acknowledgement was sent');
  }
}

/** Waits for `promise` at most `ms`; true if it settled in time. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function createBroker(options: BrokerOptions = {}): Broker {
  return new Broker(options);
}

/** /readyz in a cluster: connected to Redis and a member (a node cut off refuses new work). */
function clusterReadiness(core: BrokerCore): ReadinessCheck[] {
  const cluster = core.cluster;
  return cluster === null ? [] : [{ name: 'cluster', check: () => cluster.ready }];
}
