/**
 * Operations: everything that watches or steers a running broker from the
 * outside. startOperations(broker, config) starts, as configured, the HTTP
 * listener (health, /metrics, admin API, dashboard), the $SYS publisher and
 * the message-logging sinks, and returns the handle that reconfigures them
 * on a config reload ($SYS interval, sinks) and stops them all.
 * Call it after broker.listen(); close the handle before broker.close().
 */
import type { Broker } from '../broker/broker.js';
import { packageVersion } from '../cli/version.js';
import type { TernConfig } from '../config/schema.js';
import type { HttpContext } from '../http/context.js';
import { HttpServer, type HttpAddress } from '../http/server.js';
import type { Cluster } from '../cluster/cluster.js';
import { BrokerMetrics, type ClusterStats } from '../observability/metrics.js';
import { snapshot, type OptionalStats } from './broker-stats.js';
import { MessageLog, type SinkChange } from './message-log.js';
import { MessageTap } from './message-tap.js';
import type { MessageSink } from './sinks/sink.js';
import { SysPublisher } from './sys-topics.js';
import type { OperationsOptions } from './types.js';

export type { Ban, BanList, BridgeStatus, OperationsOptions, ReadinessCheck } from './types.js';
export type { SinkStats } from './sinks/sink.js';
export type { SinkChange, SinkKind } from './message-log.js';

export type OperationsConfig = Pick<TernConfig, 'http' | 'sys' | 'messageLog'>;

export interface Operations {
  /** Where the HTTP listener is bound (absent when http is disabled). */
  readonly address?: HttpAddress;
  /** This broker's metrics registry (Prometheus text via `metrics.render()`). */
  readonly metrics: BrokerMetrics;
  /** Message-logging sinks that are running now. */
  readonly sinks: readonly MessageSink[];
  /**
   * Apply a reloaded `[sys]` interval and `[message_log]` sections: $SYS
   * updates are rescheduled, sinks re-filtered or restarted. Returns one
   * entry per sink whose section changed (with the error when it failed and
   * the running sink was kept).
   */
  reconfigure(config: Pick<TernConfig, 'sys' | 'messageLog'>): Promise<SinkChange[]>;
  /** Stop the HTTP listener, $SYS updates and sinks (flushing them, bounded in time). */
  close(): Promise<void>;
}

export async function startOperations(broker: Broker, config: OperationsConfig, options: OperationsOptions = {}): Promise<Operations> {
  const stopping: Array<() => Promise<void> | void> = [];
  let closed = false;
  const closeAll = async (): Promise<void> => {
    closed = true;
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

    const messageLog = new MessageLog({ tap, log: broker.log, bigquery: options.bigquery });
    stopping.push(() => messageLog.close());
    await messageLog.configure(config.messageLog, true);

    const version = packageVersion();
    const stats = broker.core.stats as unknown as OptionalStats;
    const read = async () => {
      const s = await snapshot(broker);
      if (s.optional.authFailures === undefined && options.authFailures !== undefined) {
        s.optional = { ...s.optional, authFailures: options.authFailures() };
      }
      return s;
    };
    const sinkStats = () => messageLog.sinks.map((s) => ({ ...s.stats }));
    const metrics = new BrokerMetrics({
      snapshot: read,
      version,
      sinks: sinkStats,
      streams: () => ctx.streams,
      hasBytes: stats.bytesReceived !== undefined,
      hasQos: stats.publishReceivedByQos !== undefined,
      storageBackend: broker.config.storage.backend,
      ...(options.bans !== undefined ? { bans: async () => (await options.bans!.list()).length } : {}),
      ...(options.bridges !== undefined ? { bridges: options.bridges } : {}),
      ...(broker.core.cluster !== null ? { cluster: clusterStats(broker.core.cluster) } : {}),
      ...(options.processMetrics !== undefined ? { processMetrics: options.processMetrics } : {}),
    });
    // Storage commit latency: one observation per commit group, never per message.
    const durable = broker.core.durable;
    durable.commitObserver = (seconds) => metrics.observeCommit(seconds);
    stopping.push(() => {
      durable.commitObserver = null;
    });
    const ctx: HttpContext = { broker, config: config.http, tap, options, version, metrics, snapshot: read, sinks: sinkStats, streams: 0 };

    let address: HttpAddress | undefined;
    if (config.http.enabled) {
      const server = new HttpServer(ctx);
      address = await server.start();
      stopping.push(() => server.close());
      broker.log.info({ url: `${address.protocol}://${address.host}:${address.port}/` }, 'operations HTTP listening');
    }

    let sys: SysPublisher | null = null;
    const startSys = (interval: number): void => {
      if (interval <= 0) return;
      sys = new SysPublisher(broker, interval);
      sys.start();
    };
    startSys(config.sys.interval);
    stopping.push(() => sys?.stop());
    let sysInterval = config.sys.interval;

    const reconfigure = async (next: Pick<TernConfig, 'sys' | 'messageLog'>): Promise<SinkChange[]> => {
      if (closed) return [];
      const interval = next.sys.interval;
      if (interval !== sysInterval) {
        sysInterval = interval;
        if (interval <= 0) {
          await sys?.stop();
          sys = null;
        } else if (sys === null) startSys(interval);
        else sys.reschedule(interval);
      }
      return messageLog.configure(next.messageLog);
    };

    return {
      ...(address !== undefined ? { address } : {}),
      metrics,
      get sinks() {
        return messageLog.sinks;
      },
      reconfigure,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** A cluster node's figures for /metrics. */
function clusterStats(cluster: Cluster): () => ClusterStats {
  return () => ({ up: cluster.ready, remoteRoutes: cluster.ready ? cluster.routes.remoteSize : 0, ...cluster.forwarder.stats });
}
