/**
 * MQTT.js clients at protocol level 5 for the v5 integration tests: bounded
 * connect that also hands back the CONNACK, no reconnects, ended in `t.after`,
 * and a collector that keeps each received PUBLISH packet (properties included).
 */
import { connect } from 'mqtt';
import type { IClientOptions, IConnackPacket, IPublishPacket, MqttClient } from 'mqtt';
import type { TestContext } from 'node:test';
import { clientId, within } from '../../helpers/mqtt-client.js';

export interface Connected5 {
  client: MqttClient;
  connack: IConnackPacket;
}

/**
 * Connects MQTT.js (protocolVersion 5 unless `opts` says otherwise, clean,
 * no reconnect) and resolves with the client and its CONNACK. `attach` runs
 * before the CONNACK can arrive (e.g. to collect messages a resumed session
 * delivers straight away).
 */
export async function connect5(t: TestContext, url: string, opts: IClientOptions = {}, attach?: (client: MqttClient) => void): Promise<Connected5> {
  const client = connect(url, { protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 3000, clientId: clientId('mqttjs5'), ...opts });
  t.after(() => client.endAsync(true).catch(() => {}));
  attach?.(client);
  const connack = await within(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', (packet: IConnackPacket) => resolve(packet));
      client.once('error', reject);
    }),
    3000,
    'MQTT.js v5 client did not connect',
  );
  return { client, connack };
}

/** Keeps every PUBLISH a client receives; waits are bounded. */
export class PacketCollector {
  readonly packets: IPublishPacket[] = [];
  #waiters = new Set<() => void>();

  constructor(client: MqttClient) {
    client.on('message', (_topic: string, _payload: Buffer, packet: IPublishPacket) => {
      this.packets.push(packet);
      const waiters = [...this.#waiters];
      this.#waiters.clear();
      for (const w of waiters) w();
    });
  }

  /** Resolves with the first `n` packets once they arrived; rejects after `timeoutMs`. */
  async waitFor(n: number, timeoutMs = 3000): Promise<IPublishPacket[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.packets.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`PacketCollector: ${this.packets.length}/${n} messages after ${timeoutMs} ms`);
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
    return this.packets.slice(0, n);
  }
}
