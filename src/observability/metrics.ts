/**
 * Prometheus metrics for one broker, in a Registry of its own (never
 * prom-client's global one), so two brokers in one process never clash.
 *
 * Nothing here runs on the message path: every figure is read from the
 * broker's counters and state when /metrics is scraped (`render()`), and
 * counters are advanced by the difference since the last scrape.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { BrokerSnapshot } from '../ops/broker-stats.js';
import type { SinkStats } from '../ops/sinks/sink.js';

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
    const delta = total - last;
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

export class BrokerMetrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSources;
  readonly #g: Record<string, Gauge<string>>;
  readonly #c: Record<string, TotalCounter<string>>;

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
    };
    this.#c = {
      connectionsTotal: counter('tern_connections_total', 'Client connections accepted.'),
      received: counter('tern_messages_received_total', 'Application messages taken in (client PUBLISH, wills, API).'),
      deliveries: counter('tern_deliveries_total', 'Deliveries: messages routed to a session, one per matching session.'),
      dropped: counter('tern_messages_dropped_total', 'Deliveries dropped, by reason.', ['reason']),
      authFailures: counter('tern_auth_failures_total', 'Connections refused by authentication or authorization.'),
      sinkRows: counter('tern_message_log_rows_total', 'Rows handled by a message-logging sink, by outcome.', ['sink', 'outcome']),
    };
    // Only what the broker really counts is exported (no series stuck at 0).
    if (sources.hasQos === true) {
      this.#c['publishIn'] = counter('tern_publish_received_total', 'PUBLISH packets received from clients, by QoS.', ['qos']);
      this.#c['publishOut'] = counter('tern_publish_sent_total', 'PUBLISH packets sent to clients, by QoS.', ['qos']);
    }
    if (sources.hasBytes === true) {
      this.#c['bytesIn'] = counter('tern_bytes_received_total', 'Bytes received from clients.');
      this.#c['bytesOut'] = counter('tern_bytes_sent_total', 'Bytes sent to clients.');
    }
    this.#g['info']!.set({ version: sources.version }, 1);
    if (sources.processMetrics !== false) collectDefaultMetrics({ register: r });
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
  }
}
