/**
 * The local side as an MQTT connection to a local broker (standalone
 * `tern bridge`). A persistent session (clean start off, long session
 * expiry, stable client id) makes the local broker keep what the bridge has
 * not acknowledged while the bridge is stopped or killed; acknowledgements
 * are manual (MqttClient `manualAcks`) and sent only once a message is
 * committed to the cache or acknowledged by the remote: the ack chain.
 *
 * MQTT 5 when the broker speaks it (subscriptions with no-local, so the
 * bridge never receives its own publishes, and retain-as-published, so
 * retain flags are forwarded as they were published); 3.1.1 otherwise.
 */
import type { ClientOptions } from '../client/options.js';
import type { MqttClient } from '../client/client.js';
import type { ConnackPacket, Properties, PublishPacket, QoS } from '../codec/types.js';
import type { LocalConfig } from './config.js';
import { Link } from './link.js';
import type { LocalSide, LocalSink, LocalSubscription } from './local-side.js';

export class MqttLocalSide implements LocalSide {
  readonly description: string;
  readonly #config: LocalConfig;
  readonly #clientId: string;
  readonly #link: Link;
  #sink: LocalSink | null = null;
  #subs: readonly LocalSubscription[] = [];
  #epoch = 0;
  #client: MqttClient | null = null;
  #up = false;
  readonly #onMessage = (p: PublishPacket): void => this.#message(p);

  constructor(config: LocalConfig, clientId: string) {
    this.#config = config;
    this.#clientId = clientId;
    this.description = `mqtt://${config.host}:${config.port}`;
    const levels: Array<4 | 5> = config.protocolVersion === 'auto' ? [5, 4] : config.protocolVersion === '5' ? [5] : [4];
    this.#link = new Link((level) => this.#clientOptions(level), config.reconnect, levels);
    this.#link.on('up', (client, connack) => this.#onUp(client, connack));
    this.#link.on('down', (err) => this.#onDown(err));
  }

  get connected(): boolean {
    return this.#up;
  }

  get protocolLevel(): number {
    return this.#client?.protocolLevel ?? 0;
  }

  #clientOptions(level: 4 | 5): ClientOptions {
    const c = this.#config;
    const o: ClientOptions = {
      host: c.host,
      port: c.port,
      protocolLevel: level,
      clientId: this.#clientId,
      clean: false,
      keepalive: c.keepalive,
      manualAcks: true,
      connectTimeoutMs: 10_000,
    };
    if (c.username !== '') o.username = c.username;
    if (c.password !== '') o.password = c.password;
    if (level === 5) o.properties = { sessionExpiryInterval: c.sessionExpiryS, receiveMaximum: c.receiveMaximum };
    return o;
  }

  start(sink: LocalSink, subscriptions: readonly LocalSubscription[]): Promise<void> {
    this.#sink = sink;
    this.#subs = subscriptions;
    this.#link.start();
    return Promise.resolve();
  }

  #onUp(client: MqttClient, connack: ConnackPacket): void {
    this.#epoch++;
    if (this.#client !== client) {
      this.#client?.off('message', this.#onMessage);
      this.#client = client;
      client.on('message', this.#onMessage);
    }
    if (connack.sessionPresent || this.#subs.length === 0) {
      this.#markUp();
      return;
    }
    // No session at the broker: (re)subscribe. Messages start flowing as soon as the SUBACK is sent.
    const v5 = client.protocolLevel === 5;
    const requests = this.#subs.map((s) => ({
      filter: s.filter,
      qos: s.qos,
      noLocal: v5,
      retainAsPublished: v5,
      retainHandling: 0 as const,
    }));
    client.subscribe(requests).then(
      (codes) => {
        const refused = codes.findIndex((c) => c >= 0x80);
        if (refused >= 0) {
          this.#sink?.onError(new Error(`local broker refused the subscription to ${this.#subs[refused]!.filter} (0x${codes[refused]!.toString(16)})`));
        }
        this.#markUp();
      },
      () => {
        // The connection dropped before SUBACK: the next connect subscribes again.
      },
    );
  }

  #markUp(): void {
    if (!this.#up && this.#client?.connected === true) {
      this.#up = true;
      this.#sink?.onUp();
    }
  }

  #onDown(err: Error | undefined): void {
    if (this.#up) {
      this.#up = false;
      this.#sink?.onDown(err);
    }
  }

  #message(p: PublishPacket): void {
    const sink = this.#sink;
    if (sink === null) return;
    const token = p.qos === 0 ? 0 : p.packetId! | (p.qos << 16);
    sink.onMessage(p.topic, p.payload, p.qos, p.retain, p.properties, token, this.#epoch);
  }

  ack(token: number, epoch: number): void {
    if (token === 0 || epoch !== this.#epoch) return;
    this.#client?.ack(token & 0xffff, (token >>> 16) as 1 | 2);
  }

  publish(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined): boolean {
    const client = this.#client;
    if (client === null || !client.connected) return false;
    client.publishWithCallback(topic, payload, qos, retain, properties, null);
    return true;
  }

  async close(): Promise<void> {
    this.#up = false;
    await this.#link.close();
  }
}
