/**
 * Operations: everything that watches or steers a running broker from the
 * outside. startOperations(broker, config) starts, as configured, the HTTP
 * listener (health, /metrics, admin API, dashboard), the $SYS publisher and
 * the message-logging sinks, and returns the handle that stops them all.
 * Call it after broker.listen(); close the handle before broker.close().
 */
import type { Broker } from '../broker/broker.js';
import { packageVersion } from '../cli/version.js';
import type { TernConfig } from '../config/schema.js';
import type { HttpContext } from '../http/context.js';
import { HttpServer, type HttpAddress } from '../http/server.js';
import { BrokerMetrics } from '../observability/metrics.js';
import { snapshot, type OptionalStats } from './broker-stats.js';
import { toRecord } from './message-record.js';
import { MessageTap } from './message-tap.js';
import { BigquerySink } from './sinks/bigquery-sink.js';
import { FileSink } from './sinks/file-sink.js';
import type { MessageSink } from './sinks/sink.js';
import { SysPublisher } from './sys-topics.js';
import type { OperationsOptions } from './types.js';

export type { Ban, BanList, BridgeStatus, OperationsOptions, ReadinessCheck } from './types.js';
export type { SinkStats } from './sinks/sink.js';

export type OperationsConfig = Pick<TernConfig, 'http' | 'sys' | 'messageLog'>;

export interface Operations {
  /** Where the HTTP listener is bound (absent when http is disabled). */
  readonly address?: HttpAddress;
  /** This broker's metrics registry (Prometheus text via `metrics.render()`). */
  readonly metrics: BrokerMetrics;
  /** Message-logging sinks that are running. */
  readonly sinks: readonly MessageSink[];
  /** Stop the HTTP listener, $SYS updates and sinks (flushing them, bounded in time). */
  close(): Promise<void>;
}

export async function startOperations(broker: Broker, config: OperationsConfig, options: OperationsOptions = {}): Promise<Operations> {
  const stopping: Array<() => Promise<void> | void> = [];
  const closeAll = async (): Promise<void> => {
    for (const stop of stopping.reverse()) {
      try {
        await stop();
      } catch (err) {
        broker.log.warn({ err }, 'operations: error while stopping');
      }
    }
    stopping.length = 0;
  };

  try {
    const tap = new MessageTap(broker);
    stopping.push(() => tap.close());

    const sinks: MessageSink[] = [];
    const { file, bigquery } = config.messageLog;
    if (file.enabled) {
      const sink = new FileSink({ path: file.path, maxBytes: file.maxBytes, maxFiles: file.maxFiles, maxBuffer: file.maxBuffer, log: broker.log });
      await sink.open();
      sinks.push(sink);
      stopping.push(() => sink.close());
      stopping.push(tap.add(file.filters, { onMessage: (m, c) => sink.push(toRecord(m, c)) }));
    }
    if (bigquery.enabled) {
      const { enabled: _e, filters, ...rest } = bigquery;
      const sink = await BigquerySink.create({ ...rest, log: broker.log, ...(options.bigquery !== undefined ? { clientOptions: options.bigquery } : {}) });
      sinks.push(sink);
      stopping.push(() => sink.close());
      stopping.push(tap.add(filters, { onMessage: (m, c) => sink.push(toRecord(m, c)) }));
    }

    const version = packageVersion();
    const stats = broker.core.stats as unknown as OptionalStats;
    const read = async () => {
      const s = await snapshot(broker);
      if (s.optional.authFailures === undefined && options.authFailures !== undefined) {
        s.optional = { ...s.optional, authFailures: options.authFailures() };
      }
      return s;
    };
    const sinkStats = () => sinks.map((s) => ({ ...s.stats }));
    const metrics = new BrokerMetrics({
      snapshot: read,
      version,
      sinks: sinkStats,
      streams: () => ctx.streams,
      hasBytes: stats.bytesReceived !== undefined,
      hasQos: stats.publishReceivedByQos !== undefined,
      ...(options.bans !== undefined ? { bans: async () => (await options.bans!.list()).length } : {}),
      ...(options.processMetrics !== undefined ? { processMetrics: options.processMetrics } : {}),
    });
    const ctx: HttpContext = { broker, config: config.http, tap, options, version, metrics, snapshot: read, sinks: sinkStats, streams: 0 };

    let address: HttpAddress | undefined;
    if (config.http.enabled) {
      const server = new HttpServer(ctx);
      address = await server.start();
      stopping.push(() => server.close());
      broker.log.info({ url: `${address.protocol}://${address.host}:${address.port}/` }, 'operations HTTP listening');
    }

    if (config.sys.interval > 0) {
      const sys = new SysPublisher(broker, config.sys.interval);
      sys.start();
      stopping.push(() => sys.stop());
    }

    return { ...(address !== undefined ? { address } : {}), metrics, sinks, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
