/**
 * Traffic for the bridge tests: a publisher at the local broker that numbers
 * its messages and records which ones the broker acknowledged, a collector at
 * the remote broker that records what arrives, and the checks every scenario
 * ends with.
 */
import assert from 'node:assert/strict';
import { MqttClient } from '../../../src/client/client.js';
import type { ClientOptions } from '../../../src/client/options.js';

export interface Endpoint {
  host: string;
  port: number;
}

/** Publishes `<prefix>/<n>` with payload `n` at QoS 1; `acked` lists the numbers the broker acknowledged. */
export class Publisher {
  readonly client: MqttClient;
  readonly acked: number[] = [];
  readonly #topic: string;
  next = 0;
  #running = false;
  #loop: Promise<void> | null = null;

  constructor(at: Endpoint, topic = 'sensors/data', clientId = `pub-${Math.random().toString(16).slice(2, 8)}`) {
    this.#topic = topic;
    this.client = new MqttClient({ host: at.host, port: at.port, clientId, clean: false, protocolLevel: 4, reconnect: { minDelayMs: 50, maxDelayMs: 300 }, keepalive: 10 });
  }

  async connect(): Promise<void> {
    await this.client.connect();
  }

  /** Publish `count` messages as fast as the window allows. */
  async burst(count: number): Promise<void> {
    const all: Array<Promise<void>> = [];
    for (let i = 0; i < count; i++) all.push(this.#one());
    await Promise.all(all);
  }

  #one(): Promise<void> {
    const n = this.next++;
    return this.client.publish(this.#topic, String(n), { qos: 1 }).then(
      () => {
        this.acked.push(n);
      },
      () => undefined,
    );
  }

  /** Publish continuously, `perTick` messages every `intervalMs`, until stop(). */
  run(perTick: number, intervalMs: number): void {
    this.#running = true;
    this.#loop = (async () => {
      while (this.#running) {
        const batch: Array<Promise<void>> = [];
        for (let i = 0; i < perTick; i++) batch.push(this.#one());
        await new Promise((r) => setTimeout(r, intervalMs));
        // Do not pile up unbounded promises while the broker is away.
        if (this.client.queuedCount > 5000) await Promise.race([Promise.all(batch), new Promise((r) => setTimeout(r, 200))]);
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#loop;
  }

  /** Wait (bounded) until every published message is acknowledged. */
  async settle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.acked.length < this.next && Date.now() < deadline) await sleep(20);
  }

  async close(): Promise<void> {
    this.#running = false;
    await this.client.end().catch(() => undefined);
  }
}

/** Subscribes at the remote and records numbered payloads in arrival order (persistent session). */
export class Collector {
  readonly client: MqttClient;
  readonly received: number[] = [];
  readonly retained = new Map<string, string>();
  readonly #filter: string;

  /** `options`: more client options (e.g. username/password). */
  constructor(at: Endpoint, filter: string, clientId = `col-${Math.random().toString(16).slice(2, 8)}`, options: Partial<ClientOptions> = {}) {
    this.#filter = filter;
    this.client = new MqttClient({
      host: at.host,
      port: at.port,
      clientId,
      clean: false,
      protocolLevel: 4,
      reconnect: { minDelayMs: 50, maxDelayMs: 300 },
      keepalive: 10,
      ...options,
    });
    this.client.on('message', (p) => {
      const text = p.payload.toString();
      if (p.topic.endsWith('/state')) {
        this.retained.set(p.topic, text);
        return;
      }
      const n = Number(text);
      if (Number.isInteger(n)) this.received.push(n);
    });
  }

  async connect(stateTopic?: string): Promise<void> {
    await this.client.connect();
    const filters = [{ filter: this.#filter, qos: 1 as const }];
    if (stateTopic !== undefined) filters.push({ filter: stateTopic, qos: 1 });
    await this.client.subscribe(filters);
  }

  /** Wait until `pred` holds (bounded); returns whether it did. */
  async until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!pred() && Date.now() < deadline) await sleep(20);
    return pred();
  }

  has(all: readonly number[]): boolean {
    const seen = new Set(this.received);
    return all.every((n) => seen.has(n));
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => undefined);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface DeliveryReport {
  missing: number[];
  duplicates: number;
  outOfOrder: number;
}

/**
 * The checks of every scenario: each acknowledged message arrived (unless
 * `allowedMissing` were counted as dropped), first deliveries in publish
 * order, duplicates within `maxDuplicates`.
 */
export function checkDelivery(acked: readonly number[], received: readonly number[], opts: { maxDuplicates: number; allowedMissing?: number }): DeliveryReport {
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -1;
  for (const n of received) {
    if (seen.has(n)) {
      duplicates++;
      continue;
    }
    seen.add(n);
    if (n < last) outOfOrder++;
    last = n;
  }
  const missing = acked.filter((n) => !seen.has(n));
  const report = { missing, duplicates, outOfOrder };
  assert.ok(missing.length <= (opts.allowedMissing ?? 0), `missing ${missing.length} acknowledged messages (first: ${missing.slice(0, 10).join(',')})`);
  assert.equal(outOfOrder, 0, 'first deliveries out of publish order');
  assert.ok(duplicates <= opts.maxDuplicates, `${duplicates} duplicates > ${opts.maxDuplicates}`);
  return report;
}
