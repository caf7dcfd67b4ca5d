/**
 * One read of the broker's state for $SYS, /metrics and the admin overview:
 * counters from BrokerStats plus figures gathered by walking the sessions.
 * Off the hot path; it walks every session (O(sessions)).
 */
import type { Broker } from '../broker/broker.js';
import type { DropReason } from '../broker/session.js';
import { retainedStats } from './broker-access.js';

/**
 * Counters the broker core may keep besides the ones BrokerStats has today.
 * They are read when present and reported as absent otherwise, so the
 * operations module needs no change when the core starts counting them.
 */
export interface OptionalStats {
  bytesReceived?: number;
  bytesSent?: number;
  /** PUBLISH packets received from clients, by QoS [0, 1, 2]. */
  publishReceivedByQos?: number[];
  /** PUBLISH packets sent to clients, by QoS [0, 1, 2]. */
  publishSentByQos?: number[];
  /** CONNECTs refused for bad credentials or by authorization. */
  authFailures?: number;
}

export interface BrokerSnapshot {
  /** When it was taken, ms since the epoch. */
  at: number;
  uptimeSeconds: number;
  connections: number;
  connectionsTotal: number;
  sessions: number;
  sessionsOnline: number;
  sessionsOffline: number;
  subscriptions: number;
  retainedCount: number;
  retainedBytes: number;
  messagesReceived: number;
  messagesSent: number;
  dropped: Record<DropReason, number>;
  droppedTotal: number;
  inflight: number;
  queued: number;
  maxQueue: number;
  optional: OptionalStats;
}

export async function snapshot(broker: Broker, now: number = Date.now()): Promise<BrokerSnapshot> {
  const retained = await retainedStats(broker);
  const core = broker.core;
  const stats = core.stats;
  let online = 0;
  let inflight = 0;
  let queued = 0;
  let maxQueue = 0;
  for (const session of core.sessions.values()) {
    if (session.link !== null) online++;
    inflight += session.inflight.size;
    const q = session.queue.length;
    queued += q;
    if (q > maxQueue) maxQueue = q;
  }
  let droppedTotal = 0;
  for (const n of Object.values(stats.dropped)) droppedTotal += n;
  return {
    at: now,
    uptimeSeconds: Math.floor((now - core.startedAt) / 1000),
    connections: core.connections.size,
    connectionsTotal: stats.connectionsTotal,
    sessions: core.sessions.size,
    sessionsOnline: online,
    sessionsOffline: core.sessions.size - online,
    subscriptions: core.trie.size,
    retainedCount: retained.count,
    retainedBytes: retained.bytes,
    messagesReceived: stats.messagesReceived,
    messagesSent: stats.messagesSent,
    dropped: { ...stats.dropped },
    droppedTotal,
    inflight,
    queued,
    maxQueue,
    optional: stats as unknown as OptionalStats,
  };
}
