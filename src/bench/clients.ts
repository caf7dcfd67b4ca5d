/**
 * Connects the bench's clients with bounded concurrency, recording connect
 * time and counting failures, and watches each for unexpected closes.
 */
import { MqttClient } from '../client/client.js';
import type { ClientOptions } from '../client/options.js';
import type { BenchOptions } from './options.js';
import { nowMs } from './stamp.js';
import type { Stats } from './stats.js';

export interface ConnectRun {
  /** One slot per requested id: the connected client, or undefined if it failed. */
  readonly slots: Array<MqttClient | undefined>;
  /** The connected clients, in request order. */
  readonly clients: MqttClient[];
  /** Wall time the whole batch took, ms. */
  readonly elapsedMs: number;
}

export function clientOptions(o: BenchOptions, clientId: string): ClientOptions {
  const opts: ClientOptions = {
    host: o.host,
    port: o.port,
    protocolLevel: o.version,
    clientId,
    clean: true,
    keepalive: o.keepalive,
    connectTimeoutMs: 10_000,
  };
  if (o.tls) opts.tls = { ca: o.ca, rejectUnauthorized: !o.insecure };
  if (o.username !== undefined) opts.username = o.username;
  if (o.password !== undefined) opts.password = o.password;
  return opts;
}

/**
 * Connect one client per id, `o.concurrency` at a time; `setup` runs right
 * after each CONNACK (e.g. SUBSCRIBE). `stopping()` ends the batch early and
 * tells the close watcher that closes are expected.
 */
export async function connectAll(
  o: BenchOptions,
  ids: readonly string[],
  stats: Stats,
  stopping: () => boolean,
  setup?: (client: MqttClient, index: number) => Promise<void>,
): Promise<ConnectRun> {
  const slots: Array<MqttClient | undefined> = new Array<MqttClient | undefined>(ids.length);
  const started = nowMs();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length && !stopping()) {
      const i = next++;
      const client = new MqttClient(clientOptions(o, ids[i]!));
      const t0 = nowMs();
      try {
        await client.connect();
        if (setup !== undefined) await setup(client, i);
      } catch (err) {
        client.destroy();
        stats.connectFailures++;
        if (stats.errorSamples.length < 5) stats.errorSamples.push(`connect ${ids[i]!}: ${(err as Error).message}`);
        continue;
      }
      stats.connectTime.record((nowMs() - t0) * 1000);
      stats.connected++;
      client.on('close', (err) => {
        stats.connected--;
        if (err !== undefined && !stopping()) stats.error(`${ids[i]!}: ${err.message}`);
      });
      slots[i] = client;
    }
  };
  const workers: Array<Promise<void>> = [];
  for (let w = 0; w < Math.min(o.concurrency, ids.length); w++) workers.push(worker());
  await Promise.all(workers);
  return { slots, clients: slots.filter((c): c is MqttClient => c !== undefined), elapsedMs: nowMs() - started };
}

/** end() every client, bounded: stragglers are destroyed. */
export async function closeAll(clients: readonly MqttClient[], timeoutMs = 3000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, timeoutMs);
  });
  await Promise.race([Promise.all(clients.map((c) => c.end().catch(() => {}))), timeout]);
  clearTimeout(timer);
  for (const c of clients) c.destroy();
}
