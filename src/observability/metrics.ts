/**
 * Prometheus metrics for one broker, in a Registry of its own (never
 * prom-client's global one), so two brokers in one process never clash.
 *
 * Nothing here runs on the message path: every figure is read from the
 * broker's counters and state when /metrics is scraped (`render()`), and
 * counters are advanced by the difference since the last scrape. The one
 * exception is the storage commit histogram, observed once per commit group
 * (observeCommit), which is many messages when the store is busy.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BrokerSnapshot } from '../ops/broker-stats.js';
import type { SinkStats } from '../ops/sinks/sink.js';
import type { BridgeStatus } from '../ops/types.js';

export interface MetricsSources {
  /** Read the broker's figures (called once per scrape). */
  snapshot(): Promise<BrokerSnapshot>;
  /** Tern's version, for tern_info. */
  version: string;
  /** Message-logging sinks' counters. */
  sinks?: () => readonly SinkStats[];
  /** Bans in force (auth's ban list), when there is one. */
  bans?: () => Promise<number> | number;
  /** Live message streams open. */
  streams?: () => number;
  /** The broker counts bytes in/out: export tern_bytes_{received,sent}_total. */
  hasBytes?: boolean;
  /** The broker counts PUBLISH packets by QoS: export tern_publish_{received,sent}_total{qos}. */
  hasQos?: boolean;
  /** Also export Node's process metrics (process_*, nodejs_*). Default true. */
  processMetrics?: boolean;
  /** The storage backend (label of tern_storage_commit_duration_seconds). */
  storageBackend?: string;
  /** In-broker bridges' states (tern_bridge_* by `bridge` label). */
  bridges?: () => readonly BridgeStatus[] | Promise<readonly BridgeStatus[]>;
  /** This node's cluster figures (tern_cluster_*), when clustered. */
  cluster?: () => ClusterStats;
}

/** What a cluster node reports to /metrics. */
export interface ClusterStats {
  /** Connected to Redis and a member. */
  up: boolean;
  /** (filter, node) routes known for the other nodes. */
  remoteRoutes: number;
  messagesOut: number;
  batchesOut: number;
  messagesIn: number;
  batchesIn: number;
}

/** A prom-client Counter driven from a running total owned elsewhere. */
class TotalCounter<L extends string> {
  readonly counter: Counter<L>;
  readonly #last = new Map<string, number>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly L[] = []) {
    this.counter = new Counter<L>({ name, help, labelNames, registers: [registry] });
  }

  set(total: number, labels?: Partial<Record<L, string | number>>): void {
    const key = labels === undefined ? '' : JSON.stringify(labels);
    const last = this.#last.get(key) ?? 0;
    this.#last.set(key, total);
    // A total that went down was reset (a message-log sink restarted by a reload): count from 0 again.
    const delta = total < last ? total : total - last;
    if (delta > 0) {
      if (labels === undefined) this.counter.inc(delta);
      else this.counter.inc(labels, delta);
    } else if (labels === undefined && last === 0) {
      this.counter.inc(0); // show the series at 0 from the first scrape
    } else if (labels !== undefined && last === 0) {
      this.counter.inc(labels, 0);
    }
  }
}

const QOS = ['0', '1', '2'] as const;

/**
 * Commit latency buckets, seconds: from an in-memory commit (microseconds)
 * through SQLite group commits (sub-millisecond to milliseconds, more with
 * fsync) to a stalled disk or a slow Redis.
 */
const COMMIT_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSources;
  readonly #g: Record<string, Gauge<string>>;
  readonly #c: Record<string, TotalCounter<string>>;
  /** The histogram's child for this broker's backend, resolved once (observeCommit is per commit). */
  readonly #commit: { observe(seconds: number): void };

  constructor(sources: MetricsSources) {
    this.#sources = sources;
    const r = this.registry;
    const gauge = (name: string, help: string, labelNames: string[] = []): Gauge<string> =>
      new Gauge({ name, help, labelNames, registers: [r] });
    const counter = (name: string, help: string, labelNames: string[] = []): TotalCounter<string> =>
      new TotalCounter(r, name, help, labelNames);
    this.#g = {
      info: gauge('tern_info', 'Tern build information (always 1).', ['version']),
      uptime: gauge('tern_uptime_seconds', 'Seconds since the broker started.'),
      connections: gauge('tern_connections', 'Client connections open now.'),
      sessions: gauge('tern_sessions', 'Sessions by state (online: with a connection).', ['state']),
      subscriptions: gauge('tern_subscriptions', 'Subscriptions (filter, client) in the routing table.'),
      retained: gauge('tern_retained_messages', 'Retained messages stored.'),
      retainedBytes: gauge('tern_retained_bytes', 'Bytes of retained payloads stored.'),
      inflight: gauge('tern_inflight_messages', 'Outbound QoS 1/2 messages sent and not yet acknowledged, all sessions.'),
      queued: gauge('tern_queued_messages', 'Messages queued behind the in-flight window, all sessions.'),
      queueMax: gauge('tern_session_queue_depth_max', 'Longest queue of any one session.'),
      bans: gauge('tern_bans', 'Bans in force (0 when no ban list is configured).'),
      streams: gauge('tern_http_streams', 'Live message streams (SSE) open.'),
      buffered: gauge('tern_message_log_buffered_rows', 'Rows waiting in a message-logging sink.', ['sink']),
      bridgeUp: gauge('tern_bridge_up', 'In-broker bridge link state: 1 connected, 0 not (side: remote or local).', ['bridge', 'side']),
      bridgeBacklog: gauge('tern_bridge_backlog_messages', 'Messages waiting for the remote broker\'s acknowledgement (cached and being committed).', ['bridge']),
      bridgeBacklogBytes: gauge('tern_bridge_backlog_bytes', 'Bytes of the bridge\'s on-disk backlog cache.', ['bridge']),
      bridgeInflight: gauge('tern_bridge_inflight_messages', 'QoS 1/2 messages sent to the remote and not yet acknowledged.', ['bridge']),
      bridgeAckAge: gauge('tern_bridge_last_ack_age_seconds', 'Seconds since the remote last acknowledged a message (absent before the first).', ['bridge']),
    };
    this.#c = {
      connectionsTotal: counter('tern_connections_total', 'Client connections accepted.'),
      received: counter('tern_messages_received_total', 'Application messages taken in (client PUBLISH, wills, API).'),
      deliveries: counter('tern_deliveries_total', 'Deliveries: messages routed to a session, one per matching session.'),
      dropped: counter('tern_messages_dropped_total', 'Deliveries dropped, by reason.', ['reason']),
      authFailures: counter('tern_auth_failures_total', 'Connections refused by authentication or authorization.'),
      sinkRows: counter('tern_message_log_rows_total', 'Rows handled by a message-logging sink, by outcome.', ['sink', 'outcome']),
      bridgeForwarded: counter('tern_bridge_forwarded_total', 'Messages the remote broker acknowledged (or took, for QoS 0).', ['bridge']),
      bridgeDelivered: counter('tern_bridge_delivered_total', 'Messages from the remote broker published locally.', ['bridge']),
      bridgeDropped: counter('tern_bridge_dropped_total', 'Messages a bridge dropped, by reason.', ['bridge', 'reason']),
    };
    const commit = new Histogram({
      name: 'tern_storage_commit_duration_seconds',
      help: 'Time the storage backend took to commit one group of writes (sessions, subscriptions, QoS 1/2 messages, retained).',
      labelNames: ['backend'],
      buckets: COMMIT_BUCKETS,
      registers: [r],
    });
    this.#commit = commit.labels({ backend: sources.storageBackend ?? 'unknown' });
    // Only what the broker really counts is exported (no series stuck at 0).
    if (sources.hasQos === true) {
      this.#c['publishIn'] = counter('tern_publish_received_total', 'PUBLISH packets received from clients, by QoS.', ['qos']);
      this.#c['publishOut'] = counter('tern_publish_sent_total', 'PUBLISH packets sent to clients, by QoS.', ['qos']);
    }
    if (sources.cluster !== undefined) {
      this.#g['clusterUp'] = gauge('tern_cluster_up', 'Cluster node state: 1 connected to Redis and a member, 0 not (refusing new connections).');
      this.#g['clusterRoutes'] = gauge('tern_cluster_remote_routes', 'Routes (filter, node) this node knows for the other nodes.');
      this.#c['clusterMessages'] = counter('tern_cluster_forwarded_messages_total', 'Messages forwarded between nodes, by direction (out: sent to other nodes, one per node; in: received).', ['direction']);
      this.#c['clusterBatches'] = counter('tern_cluster_forwarded_batches_total', 'Stream entries (batches of messages, one XADD each) between nodes, by direction.', ['direction']);
    }
    if (sources.hasBytes === true) {
      this.#c['bytesIn'] = counter('tern_bytes_received_total', 'Bytes received from clients.');
      this.#c['bytesOut'] = counter('tern_bytes_sent_total', 'Bytes sent to clients.');
    }
    this.#g['info']!.set({ version: sources.version }, 1);
    if (sources.processMetrics !== false) collectDefaultMetrics({ register: r });
  }

  /** One storage commit took `seconds` (called by the durable write path, once per commit group). */
  observeCommit(seconds: number): void {
    this.#commit.observe(seconds);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Read every figure and render the Prometheus text exposition. */
  async render(): Promise<string> {
    await this.refresh();
    return this.registry.metrics();
  }

  async refresh(): Promise<void> {
    const src = this.#sources;
    const s = await src.snapshot();
    const g = this.#g;
    const c = this.#c;
    g['uptime']!.set(s.uptimeSeconds);
    g['connections']!.set(s.connections);
    g['sessions']!.set({ state: 'online' }, s.sessionsOnline);
    g['sessions']!.set({ state: 'offline' }, s.sessionsOffline);
    g['subscriptions']!.set(s.subscriptions);
    g['retained']!.set(s.retainedCount);
    g['retainedBytes']!.set(s.retainedBytes);
    g['inflight']!.set(s.inflight);
    g['queued']!.set(s.queued);
    g['queueMax']!.set(s.maxQueue);
    g['bans']!.set(src.bans !== undefined ? await src.bans() : 0);
    g['streams']!.set(src.streams?.() ?? 0);
    c['connectionsTotal']!.set(s.connectionsTotal);
    c['received']!.set(s.messagesReceived);
    c['deliveries']!.set(s.messagesSent);
    for (const [reason, n] of Object.entries(s.dropped)) c['dropped']!.set(n, { reason });
    const o = s.optional;
    c['authFailures']!.set(o.authFailures ?? 0);
    const byQos = (counter: TotalCounter<string> | undefined, values: number[] | undefined): void => {
      if (counter !== undefined && values !== undefined) QOS.forEach((q, i) => counter.set(values[i] ?? 0, { qos: q }));
    };
    byQos(c['publishIn'], o.publishReceivedByQos);
    byQos(c['publishOut'], o.publishSentByQos);
    if (o.bytesReceived !== undefined) c['bytesIn']?.set(o.bytesReceived);
    if (o.bytesSent !== undefined) c['bytesOut']?.set(o.bytesSent);
    for (const sink of src.sinks?.() ?? []) {
      g['buffered']!.set({ sink: sink.name }, sink.buffered);
      c['sinkRows']!.set(sink.written, { sink: sink.name, outcome: 'written' });
      c['sinkRows']!.set(sink.dropped, { sink: sink.name, outcome: 'dropped' });
      c['sinkRows']!.set(sink.failed, { sink: sink.name, outcome: 'failed' });
    }
    if (src.bridges !== undefined) this.#bridges(await src.bridges());
    if (src.cluster !== undefined) {
      const k = src.cluster();
      g['clusterUp']!.set(k.up ? 1 : 0);
      g['clusterRoutes']!.set(k.remoteRoutes);
      c['clusterMessages']!.set(k.messagesOut, { direction: 'out' });
      c['clusterMessages']!.set(k.messagesIn, { direction: 'in' });
      c['clusterBatches']!.set(k.batchesOut, { direction: 'out' });
      c['clusterBatches']!.set(k.batchesIn, { direction: 'in' });
    }
  }

  #bridges(bridges: readonly BridgeStatus[]): void {
    const g = this.#g;
    const c = this.#c;
    for (const b of bridges) {
      const bridge = b.name;
      g['bridgeUp']!.set({ bridge, side: 'remote' }, b.state === 'up' ? 1 : 0);
      if (b.local !== undefined) g['bridgeUp']!.set({ bridge, side: 'local' }, b.local.state === 'up' ? 1 : 0);
      if (b.backlog !== undefined) {
        g['bridgeBacklog']!.set({ bridge }, b.backlog.messages);
        g['bridgeBacklogBytes']!.set({ bridge }, b.backlog.bytes);
      }
      if (b.inflight !== undefined) g['bridgeInflight']!.set({ bridge }, b.inflight);
      if (b.lastAckAgeMs !== undefined && b.lastAckAgeMs >= 0) g['bridgeAckAge']!.set({ bridge }, b.lastAckAgeMs / 1000);
      else g['bridgeAckAge']!.remove({ bridge });
      if (b.forwarded !== undefined) c['bridgeForwarded']!.set(b.forwarded, { bridge });
      if (b.delivered !== undefined) c['bridgeDelivered']!.set(b.delivered, { bridge });
      for (const [reason, n] of Object.entries(b.drops ?? {})) c['bridgeDropped']!.set(n, { bridge, reason });
    }
  }
}
