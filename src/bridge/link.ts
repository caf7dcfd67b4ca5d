/**
 * A self-healing MQTT connection built on MqttClient. MqttClient reconnects
 * by itself once it has connected, but a failed *first* connect is final for
 * it; Link retries that too (same backoff: exponential, jitter, cap), so a
 * bridge started while its peer is down just waits for it.
 *
 * Protocol fallback: with levels [5, 4] a first connect refused for its
 * protocol version (3.1.1 return code 1, v5 reason 0x84, or a 3.1.1 CONNACK
 * that does not parse as MQTT 5) or closed by the server right after
 * CONNECT is retried at once with the next level; the level that connected
 * is kept.
 */
import { EventEmitter } from 'node:events';
import { reconnectDelay } from '../client/backoff.js';
import { MqttClient } from '../client/client.js';
import type { ClientOptions } from '../client/options.js';
import type { ConnackPacket } from '../codec/types.js';
import { isTernError } from '../errors.js';

export interface LinkEvents {
  /** CONNACK accepted (first connect and every reconnect). */
  up: [client: MqttClient, connack: ConnackPacket];
  /** The connection closed or a connect attempt failed. */
  down: [err: Error | undefined];
}

export interface LinkReconnect {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly factor: number;
  readonly jitter: number;
}

export class Link extends EventEmitter<LinkEvents> {
  readonly #options: (level: 4 | 5) => ClientOptions;
  readonly #reconnect: LinkReconnect;
  readonly #levels: ReadonlyArray<4 | 5>;
  #levelIndex = 0;
  #client: MqttClient | null = null;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined = undefined;
  #closed = false;
  #wasUp = false;

  constructor(options: (level: 4 | 5) => ClientOptions, reconnect: LinkReconnect, levels: ReadonlyArray<4 | 5>) {
    super();
    this.#options = options;
    this.#reconnect = reconnect;
    this.#levels = levels;
  }

  get client(): MqttClient | null {
    return this.#client;
  }

  get connected(): boolean {
    return this.#client?.connected ?? false;
  }

  get protocolLevel(): 4 | 5 {
    return this.#levels[this.#levelIndex]!;
  }

  start(): void {
    this.#connect();
  }

  #connect(): void {
    if (this.#closed) return;
    const level = this.#levels[this.#levelIndex]!;
    const client = new MqttClient({ ...this.#options(level), reconnect: this.#reconnect });
    this.#client = client;
    client.on('connect', (connack) => {
      if (this.#client !== client) return;
      this.#attempt = 0;
      this.#wasUp = true;
      this.emit('up', client, connack);
    });
    client.on('close', (err) => {
      if (this.#client !== client || this.#closed) return;
      if (this.#wasUp) {
        this.#wasUp = false;
        this.emit('down', err);
      }
    });
    client.connect().catch((err: unknown) => {
      if (this.#client !== client || this.#closed) return;
      this.emit('down', err as Error);
      if (this.#shouldFallBack(err) && this.#levelIndex + 1 < this.#levels.length) {
        this.#levelIndex++;
        this.#connect();
        return;
      }
      const delay = reconnectDelay(this.#attempt++, this.#reconnect);
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#connect();
      }, delay);
    });
  }

  #shouldFallBack(err: unknown): boolean {
    if (isTernError(err, 'ERR_CLIENT_CONNECT_REFUSED')) return err.reasonCode === 0x01 || err.reasonCode === 0x84;
    // A 3.1.1 CONNACK (return code 1) read as an MQTT 5 one is malformed.
    if (isTernError(err, 'ERR_MQTT_MALFORMED') || isTernError(err, 'ERR_MQTT_PROTOCOL')) return true;
    // Closed by the server after our CONNECT, without a socket error: some 3.1.1-only brokers do that.
    return isTernError(err, 'ERR_CLIENT_CONNECTION_LOST') && err.cause === undefined && this.#client !== null;
  }

  /** Stop retrying; `beforeEnd` runs while still connected (e.g. publish `offline`), then DISCONNECT. */
  async close(beforeEnd?: (client: MqttClient) => Promise<void>): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    const client = this.#client;
    if (client === null) return;
    if (client.connected && beforeEnd !== undefined) {
      try {
        await beforeEnd(client);
      } catch {
        // Best effort: the will covers a failed goodbye.
      }
    }
    await client.end();
  }
}
