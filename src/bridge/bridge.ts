/**
 * createBridge(options) -> Bridge: one bridge between a local side (an MQTT
 * connection, or a Tern Broker in the same process) and a remote broker.
 *
 *   local --[[forward]]--> Pipeline (group commit to the cache, ordered,
 *                          windowed sender) --> remote (prefix prepended)
 *   remote --[[subscribe]]--> local (prefix stripped; real time, not cached:
 *                          dropped and counted while the local side is down)
 *
 * Lifecycle: start() opens the cache (lock, corrupt-file handling), starts
 * both sides and resolves once the bridge is ready (replaying as soon as the
 * remote connects); close() stops ingest, commits, publishes `offline` on the
 * state topic, disconnects both sides and closes the cache.
 *
 * Observability: stats() (a plain object; prom-client wiring lives with the
 * ops helpers) and typed events.
 */
import { EventEmitter } from 'node:events';
import type { Broker } from '../broker/broker.js';
import type { MqttClient } from '../client/client.js';
import type { PublishPacket, QoS } from '../codec/types.js';
import { ternError } from '../errors.js';
import { BridgeCache } from './cache.js';
import {
  cacheFileOf,
  resolveBridgeConfig,
  type BridgeConfig,
  type BridgeFileConfig,
  type BridgeFileConfigInput,
  type LocalConfig,
} from './config.js';
import { BrokerLocalSide } from './local-broker.js';
import { MqttLocalSide } from './local-mqtt.js';
import type { LocalSide, LocalSink } from './local-side.js';
import { DROP_REASONS, Pipeline, type DropReason } from './pipeline.js';
import { RemoteSide } from './remote.js';
import { forwardTopic, subscribeTopic, topicMatches } from './topics.js';

export type LinkState = 'connecting' | 'up' | 'down' | 'closed';

export interface BridgeStats {
  name: string;
  local: { state: LinkState; protocolLevel: number; description: string; connects: number };
  remote: { state: LinkState; protocolLevel: number; description: string; connects: number };
  /** Messages waiting for the remote's acknowledgement: cached rows and the batch being committed. */
  backlog: { messages: number; bytes: number; diskFull: boolean };
  /** QoS 1/2 messages sent to the remote and not yet acknowledged. */
  inflight: number;
  /** Remote acknowledgements per second over the last stats interval. */
  replayRate: number;
  /** Messages taken from the local side for forwarding. */
  received: number;
  /** Messages the remote acknowledged (or took, for QoS 0). */
  forwarded: number;
  /** Remote messages published locally. */
  delivered: number;
  drops: Record<DropReason, number>;
  /** Milliseconds since the remote's last acknowledgement; -1 if none yet. */
  lastAckAgeMs: number;
  cacheFile: string;
}

export interface BridgeEvents {
  /** Ready: cache open, both sides started (not necessarily connected). */
  ready: [];
  remoteUp: [sessionPresent: boolean];
  remoteDown: [err: Error | undefined];
  localUp: [];
  localDown: [err: Error | undefined];
  /** Messages dropped, by reason. */
  drop: [reason: DropReason, count: number];
  /** The backlog was fully acknowledged by the remote. */
  drained: [];
  /** The cache file was corrupt (at start, or found so while running) and moved to `movedTo`; a fresh cache started. */
  cacheReset: [file: string, movedTo: string];
  /** Once per stats interval. */
  stats: [stats: BridgeStats];
  /** Something went wrong that the bridge survives (a failed commit, a refused subscription). */
  error: [err: Error];
}

export interface BridgeOptions extends BridgeFileConfigInput {
  /** Use this local side (e.g. a BrokerLocalSide) instead of the `local` MQTT connection. */
  localSide?: LocalSide;
  /** Shorthand for `localSide: new BrokerLocalSide(broker)`: the bridge runs inside this broker. */
  broker?: Broker;
  /** Interval of the `stats` event and of the replay rate, ms (default 1000; 0 disables the event). */
  statsIntervalMs?: number;
  /** Cap the cache file at this many 4 KiB pages (models a full disk in tests). */
  cacheMaxPageCount?: number;
}

export class Bridge extends EventEmitter<BridgeEvents> {
  readonly config: BridgeFileConfig;
  readonly #options: BridgeOptions;
  #cache: BridgeCache | null = null;
  #pipeline: Pipeline | null = null;
  #local: LocalSide;
  #remote: RemoteSide | null = null;
  #remoteClient: MqttClient | null = null;
  #localState: LinkState = 'connecting';
  #remoteState: LinkState = 'connecting';
  #localConnects = 0;
  #remoteConnects = 0;
  #delivered = 0;
  readonly #drops: Record<DropReason, number>;
  #statsTimer: NodeJS.Timeout | undefined = undefined;
  #rate = 0;
  #rateBase = 0;
  #rateAt = 0;
  #started = false;
  #closing: Promise<void> | null = null;
  readonly #forward: ReadonlyArray<{ filter: string; prefix: string }>;
  readonly #onRemoteMessage = (p: PublishPacket): void => this.#remoteMessage(p);

  constructor(options: BridgeOptions) {
    super();
    const { localSide, broker, statsIntervalMs: _s, cacheMaxPageCount: _c, ...config } = options;
    this.config = resolveBridgeConfig(config);
    this.#options = options;
    this.#drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
    this.#forward = this.config.forward.map((f) => ({ filter: f.local, prefix: f.remotePrefix }));
    const clientId = defaultClientId(this.config.name, this.config.local);
    this.#local = localSide ?? (broker !== undefined ? new BrokerLocalSide(broker) : new MqttLocalSide(this.config.local, clientId));
  }

  get cacheFile(): string {
    return cacheFileOf(this.config);
  }

  /** Open the cache and start both sides. Throws ERR_STORAGE_LOCKED if another bridge holds the cache. */
  async start(): Promise<void> {
    if (this.#started) throw ternError('ERR_BROKER_STARTED', `bridge ${this.config.name} was already started`);
    this.#started = true;
    const c = this.config;
    const cacheOptions: { durability: 'full' | 'normal'; maxPageCount?: number } = { durability: c.cache.durability };
    if (this.#options.cacheMaxPageCount !== undefined) cacheOptions.maxPageCount = this.#options.cacheMaxPageCount;
    const cache = BridgeCache.open(this.cacheFile, cacheOptions);
    this.#cache = cache;
    if (cache.movedAside !== null) this.#cacheReset(cache.file, cache.movedAside, '');
    const pipeline = new Pipeline(
      cache,
      {
        limits: { maxMessages: c.cache.maxMessages, maxBytes: c.cache.maxBytes, overflow: c.cache.overflow },
        maxMessageBytes: c.cache.maxMessageBytes,
        batchSize: c.cache.batchSize,
        replayIntervalMs: c.cache.replayIntervalMs,
        commitIntervalMs: c.cache.commitIntervalMs,
        cacheQos0: c.cache.cacheQos0,
        ttlMs: c.cache.messageTtlS * 1000,
        window: c.remote.inflightWindow,
      },
      {
        local: this.#local,
        dropped: (reason, count) => this.#dropped(reason, count),
        drained: () => this.emit('drained'),
        cacheReset: (file, movedTo, lost, estimated) =>
          this.#cacheReset(file, movedTo, ` while running; ${estimated && lost > 0 ? 'at most ' : ''}${lost} cached messages were only in it (dropped: corrupt)`),
        error: (err) => this.#error(err),
      },
    );
    this.#pipeline = pipeline;
    try {
      this.#remote = new RemoteSide(c, {
        up: (client, connack) => this.#remoteUp(client, connack.sessionPresent),
        down: (err) => this.#remoteDown(err),
      });
    } catch (err) {
      cache.close();
      throw err;
    }
    const sink: LocalSink = {
      onMessage: (topic, payload, qos, retain, properties, token, epoch) => {
        const rule = this.#rule(topic);
        if (rule === undefined) {
          // Not ours (a subscription left over from an older config): acknowledge and forget.
          if (token !== 0) this.#local.ack(token, epoch);
          return;
        }
        pipeline.ingest(forwardTopic(rule.prefix, topic), payload, qos, retain, properties, token, epoch);
      },
      onUp: () => {
        this.#localState = 'up';
        this.#localConnects++;
        this.emit('localUp');
      },
      onDown: (err) => {
        if (this.#localState === 'closed') return;
        this.#localState = 'down';
        pipeline.flush();
        this.emit('localDown', err);
      },
      onError: (err) => this.#error(err),
    };
    this.#remote.start();
    await this.#local.start(
      sink,
      c.forward.map((f) => ({ filter: f.local, qos: f.qos })),
    );
    const interval = this.#options.statsIntervalMs ?? 1000;
    this.#rateAt = Date.now();
    this.#statsTimer = setInterval(() => this.#tick(), interval > 0 ? interval : 1000);
    this.#statsTimer.unref();
    this.emit('ready');
  }

  #rule(topic: string): { filter: string; prefix: string } | undefined {
    const rules = this.#forward;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (topicMatches(r.filter, topic)) return r;
    }
    return undefined;
  }

  #remoteUp(client: MqttClient, sessionPresent: boolean): void {
    this.#remoteState = 'up';
    this.#remoteConnects++;
    if (this.#remoteClient !== client) {
      this.#remoteClient?.off('message', this.#onRemoteMessage);
      this.#remoteClient = client;
      client.on('message', this.#onRemoteMessage);
    }
    if (!sessionPresent && this.config.subscribe.length > 0) {
      // Resubscribe whenever the remote has no session for us.
      this.#remote!.subscribe(client).then(
        (codes) => {
          const bad = codes.findIndex((code) => code >= 0x80);
          if (bad >= 0) this.#error(new Error(`remote refused the subscription to ${this.config.subscribe[bad]!.remote} (0x${codes[bad]!.toString(16)})`));
        },
        () => undefined, // the link dropped: the next connect subscribes again
      );
    }
    this.#pipeline?.remoteUp(client);
    this.emit('remoteUp', sessionPresent);
  }

  #remoteDown(err: Error | undefined): void {
    if (this.#remoteState === 'closed' || this.#remoteState === 'down') return;
    this.#remoteState = 'down';
    this.#pipeline?.remoteDown();
    this.emit('remoteDown', err);
  }

  #remoteMessage(p: PublishPacket): void {
    const rules = this.config.subscribe;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!topicMatches(r.remote, p.topic)) continue;
      const qos = (p.qos < r.qos ? p.qos : r.qos) as QoS;
      let props = p.properties;
      if (props !== undefined && (props.subscriptionIdentifiers !== undefined || props.topicAlias !== undefined)) {
        props = { ...props };
        delete props.subscriptionIdentifiers;
        delete props.topicAlias;
      }
      if (this.#local.publish(subscribeTopic(r.stripPrefix, r.localPrefix, p.topic), p.payload, qos, p.retain, props)) {
        this.#delivered++;
      } else {
        this.#dropped('local_down', 1);
      }
      return;
    }
  }

  /** A corrupt cache file was moved aside and a fresh cache started (at open, or while running). */
  #cacheReset(file: string, movedTo: string, detail: string): void {
    const err = ternError(
      'ERR_STORAGE_CORRUPT',
      `bridge ${this.config.name}: cache ${file} was corrupt${detail}; moved to ${movedTo} and started a fresh cache`,
    );
    this.emit('cacheReset', file, movedTo);
    this.#error(err);
  }

  #dropped(reason: DropReason, count: number): void {
    this.#drops[reason] += count;
    if (this.listenerCount('drop') > 0) this.emit('drop', reason, count);
  }

  #error(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #tick(): void {
    const p = this.#pipeline;
    if (p === null) return;
    const now = Date.now();
    const dt = now - this.#rateAt;
    if (dt > 0) this.#rate = Math.round(((p.acked - this.#rateBase) * 1000) / dt);
    this.#rateBase = p.acked;
    this.#rateAt = now;
    if ((this.#options.statsIntervalMs ?? 1000) > 0 && this.listenerCount('stats') > 0) this.emit('stats', this.stats());
  }

  stats(): BridgeStats {
    const p = this.#pipeline;
    const cache = this.#cache;
    const client = this.#remoteClient;
    return {
      name: this.config.name,
      local: {
        state: this.#localState,
        protocolLevel: this.#local.protocolLevel,
        description: this.#local.description,
        connects: this.#localConnects,
      },
      remote: {
        state: this.#remoteState,
        protocolLevel: client?.protocolLevel ?? 0,
        description: this.#remote?.description ?? '',
        connects: this.#remoteConnects,
      },
      backlog: { messages: p?.backlog ?? 0, bytes: cache?.bytes ?? 0, diskFull: cache?.diskFull ?? false },
      inflight: p?.inflight ?? 0,
      replayRate: this.#rate,
      received: p?.received ?? 0,
      forwarded: p?.acked ?? 0,
      delivered: this.#delivered,
      drops: { ...this.#drops },
      lastAckAgeMs: p === null || p.lastAckAt === 0 ? -1 : Date.now() - p.lastAckAt,
      cacheFile: this.cacheFile,
    };
  }

  /** Stop ingest, commit, publish `offline`, disconnect both sides, close the cache. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#statsTimer);
    const p = this.#pipeline;
    // Commit (and acknowledge locally) what arrived, then stop both sides.
    p?.flush();
    p?.pause();
    this.#localState = 'closed';
    await this.#local.close();
    this.#remoteState = 'closed';
    await this.#remote?.close();
    p?.finish();
    this.#cache?.close();
  }
}

function defaultClientId(name: string, local: LocalConfig): string {
  return local.clientId !== '' ? local.clientId : `tern-bridge-${name}`;
}

export function createBridge(options: BridgeOptions): Bridge {
  return new Bridge(options);
}

/**
 * Bridges from a broker config's `[[bridges]]`, each with the broker as its
 * local side. The caller starts them after broker.listen() and closes them
 * before broker.close().
 */
export function createBrokerBridges(broker: Broker, bridges: readonly BridgeConfig[]): Bridge[] {
  return bridges.map((b) => createBridge({ ...b, broker }));
}
