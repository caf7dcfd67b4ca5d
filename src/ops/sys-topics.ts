/**
 * $SYS/broker/... topics with Mosquitto's names (mosquitto src/sys_tree.c),
 * published as retained QoS 0 messages by the broker itself every
 * `sys.interval` seconds. Like Mosquitto, a topic is re-published only when
 * its value changed; $SYS/broker/version once at start.
 *
 * Tern's message counters count application messages (PUBLISH), not every
 * packet: `messages/received` equals `publish/messages/received` here.
 */
import type { Broker } from '../broker/broker.js';
import { packageVersion } from '../cli/version.js';
import { snapshot, type BrokerSnapshot, type OptionalStats } from './broker-stats.js';
import { LoadAverage } from './load-average.js';

const PREFIX = '$SYS/broker/';
const WINDOWS = ['1min', '5min', '15min'] as const;

interface Load {
  readonly topic: string;
  readonly avg: LoadAverage;
  readonly read: () => number | undefined;
}

export class SysPublisher {
  readonly #broker: Broker;
  #intervalMs: number;
  readonly #last = new Map<string, string>();
  readonly #loads: Load[] = [];
  #timer: NodeJS.Timeout | undefined = undefined;
  #running: Promise<void> | null = null;
  #maxClients = 0;
  #maxHeap = 0;

  constructor(broker: Broker, intervalSeconds: number) {
    this.#broker = broker;
    this.#intervalMs = intervalSeconds * 1000;
  }

  start(): void {
    const now = Date.now();
    const stats = this.#broker.core.stats;
    const optional = stats as unknown as OptionalStats;
    const load = (topic: string, read: () => number | undefined): void => {
      const total = read();
      if (total !== undefined) this.#loads.push({ topic, avg: new LoadAverage(total, now), read });
    };
    load('load/messages/received', () => stats.messagesReceived);
    load('load/messages/sent', () => stats.messagesSent);
    load('load/publish/received', () => stats.messagesReceived);
    load('load/publish/sent', () => stats.messagesSent);
    load('load/publish/dropped', () => sum(Object.values(stats.dropped)));
    load('load/connections', () => stats.connectionsTotal);
    load('load/bytes/received', () => optional.bytesReceived);
    load('load/bytes/sent', () => optional.bytesSent);
    this.#put('version', `tern version ${packageVersion()}`);
    this.#tick(now);
    this.#timer = setInterval(() => this.#tick(Date.now()), this.#intervalMs);
    this.#timer.unref();
  }

  /** Publish every `intervalSeconds` from now on (a config reload changed sys.interval). */
  reschedule(intervalSeconds: number): void {
    this.#intervalMs = intervalSeconds * 1000;
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.#tick(Date.now()), this.#intervalMs);
    this.#timer.unref();
  }

  /** Stop updating; resolves once an update under way has finished. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Publish every figure that changed since the last update. */
  async update(now: number): Promise<void> {
    let s: BrokerSnapshot;
    try {
      s = await snapshot(this.#broker, now);
    } catch (err) {
      this.#broker.log.debug({ err }, '$SYS update skipped');
      return;
    }
    const o = s.optional;
    if (s.connections > this.#maxClients) this.#maxClients = s.connections;
    const heap = process.memoryUsage().heapUsed;
    if (heap > this.#maxHeap) this.#maxHeap = heap;
    this.#put('uptime', `${s.uptimeSeconds} seconds`);
    this.#put('clients/connected', s.connections);
    this.#put('clients/active', s.connections);
    this.#put('clients/disconnected', s.sessionsOffline);
    this.#put('clients/inactive', s.sessionsOffline);
    this.#put('clients/total', s.connections + s.sessionsOffline);
    this.#put('clients/maximum', this.#maxClients);
    this.#put('messages/received', s.messagesReceived);
    this.#put('messages/sent', s.messagesSent);
    this.#put('messages/stored', s.retainedCount + s.queued + s.inflight);
    this.#put('store/messages/count', s.retainedCount + s.queued + s.inflight);
    this.#put('publish/messages/received', s.messagesReceived);
    this.#put('publish/messages/sent', s.messagesSent);
    this.#put('publish/messages/dropped', s.droppedTotal);
    this.#put('retained messages/count', s.retainedCount);
    this.#put('subscriptions/count', s.subscriptions);
    this.#put('heap/current', heap);
    this.#put('heap/maximum', this.#maxHeap);
    if (o.bytesReceived !== undefined) this.#put('bytes/received', o.bytesReceived);
    if (o.bytesSent !== undefined) this.#put('bytes/sent', o.bytesSent);
    for (const l of this.#loads) {
      const total = l.read();
      if (total === undefined) continue;
      const values = l.avg.update(total, now);
      for (let i = 0; i < 3; i++) this.#put(`${l.topic}/${WINDOWS[i]}`, values[i]!.toFixed(2));
    }
  }

  /** Skip a tick rather than pile updates up behind a slow store. */
  #tick(now: number): void {
    this.#running ??= this.update(now).finally(() => (this.#running = null));
  }

  #put(suffix: string, value: string | number): void {
    const text = String(value);
    if (this.#last.get(suffix) === text) return;
    this.#last.set(suffix, text);
    this.#broker.publish({ topic: PREFIX + suffix, payload: text, qos: 0, retain: true, system: true }).catch((err: unknown) => {
      this.#broker.log.debug({ err, topic: PREFIX + suffix }, '$SYS publish failed');
    });
  }
}

function sum(values: number[]): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}
