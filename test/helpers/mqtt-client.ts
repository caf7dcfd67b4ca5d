/**
 * MQTT.js (v4 / 3.1.1 by default) clients for integration tests: no automatic
 * reconnects, bounded connect, ended in `t.after`, plus a message collector
 * whose waits are bounded.
 */
import { connect, connectAsync } from 'mqtt';
import type { IClientOptions, IPublishPacket, MqttClient } from 'mqtt';
import type { Socket } from 'node:net';
import type { TestContext } from 'node:test';

let counter = 0;
/** A unique client id for this test process. */
export function clientId(prefix = 'c'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

/** Connects an MQTT.js client (protocolVersion 4, clean, no reconnect) and ends it in `t.after`. */
export async function connectMqtt(t: TestContext, url: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = await connectAsync(
    url,
    { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, clientId: clientId('mqttjs'), ...opts },
    false,
  );
  t.after(() => client.endAsync(true).catch(() => {}));
  return client;
}

/**
 * Creates an MQTT.js client without waiting for CONNACK, so listeners (e.g. a
 * MessageCollector) are attached before queued messages can arrive. Await
 * `connected(client)` next.
 */
export function mqttClient(t: TestContext, url: string, opts: IClientOptions = {}): MqttClient {
  const client = connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, clientId: clientId('mqttjs'), ...opts });
  t.after(() => client.endAsync(true).catch(() => {}));
  return client;
}

/** Resolves on the client's first 'connect' (rejects on 'error' or after `timeoutMs`). */
export function connected(client: MqttClient, timeoutMs = 3000): Promise<void> {
  if (client.connected) return Promise.resolve();
  return within(
    new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    }),
    timeoutMs,
    'MQTT.js client did not connect',
  );
}

export interface ReceivedMessage {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  dup: boolean;
}

/** Records every message a client receives; `waitFor(n)` resolves once n arrived. */
export class MessageCollector {
  readonly messages: ReceivedMessage[] = [];
  /** Messages received so far (also counted when `keep` is false). */
  count = 0;
  #waiters = new Set<() => void>();

  /** `keep: false` only counts (for floods), leaving `messages` empty. */
  constructor(client: MqttClient, o: { keep?: boolean } = {}) {
    const keep = o.keep ?? true;
    client.on('message', (topic: string, payload: Buffer, packet: IPublishPacket) => {
      this.count += 1;
      if (keep) this.messages.push({ topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup });
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      for (const w of waiters) w();
    });
  }

  /** Resolves with the first `n` messages once at least `n` arrived; rejects after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 3000): Promise<ReceivedMessage[]> {
    await this.waitForCount(n, timeoutMs);
    return this.messages.slice(0, n);
  }

  /** Resolves once at least `n` messages arrived; rejects after `timeoutMs`. */
  async waitForCount(n: number, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.count < n) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`MessageCollector: ${this.count}/${n} messages after ${timeoutMs} ms; last: ${JSON.stringify(this.messages.slice(-3))}`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** Waits for a message with this payload (rejects after `timeoutMs`); returns everything received up to it. */
  async waitForPayload(payload: string, timeoutMs = 3000): Promise<ReceivedMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (let n = 1; ; n += 1) {
      await this.waitFor(n, Math.max(1, deadline - Date.now()));
      if (this.messages[n - 1]?.payload === payload) return this.messages.slice(0, n);
    }
  }
}

/** Rejects with `message` if `promise` has not settled within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A client that measures the broker's latency: subscribed to its own
 * `probe/rtt`, with Nagle off (MQTT.js leaves it on, and its small PUBACK +
 * PUBLISH writes would wait ~40 ms on delayed ACKs).
 */
export async function probeClient(t: TestContext, url: string): Promise<MqttClient> {
  const client = await connectMqtt(t, url);
  (client.stream as unknown as Socket).setNoDelay(true);
  await client.subscribeAsync('probe/rtt', { qos: 1 });
  return client;
}

/**
 * Median QoS 1 round trip (publish to self) of `n` messages, ms. The median,
 * not a high percentile: npm test runs other files in parallel on a small
 * machine, and their load lands in the tail; a broker whose loop is held by an
 * abusive client shows in the median too.
 */
export async function medianRoundTrip(client: MqttClient, n: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const got = new Promise<void>((resolve) => client.once('message', () => resolve()));
    const start = performance.now();
    await client.publishAsync('probe/rtt', String(i), { qos: 1 });
    await got;
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}
