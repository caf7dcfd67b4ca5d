/**
 * The remote side: one MQTT 3.1.1 or 5 connection (TCP or TLS) through Link.
 * - After every connect: a retained `online` on the state topic, and the
 *   [[subscribe]] filters again whenever the remote has no session.
 * - The will is a retained `offline` on the state topic, published by the
 *   remote when the link dies; close() publishes `offline` itself.
 * - Half-open links: keep-alive and the client's ack timeout close the
 *   connection, and the client reconnects (exponential backoff, jitter, cap).
 */
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { MqttClient } from '../client/client.js';
import type { ClientOptions, TlsOptions } from '../client/options.js';
import type { ConnackPacket } from '../codec/types.js';
import { ternError } from '../errors.js';
import type { BridgeConfig } from './config.js';
import { stateTopicOf } from './config.js';
import { Link } from './link.js';

export const ONLINE = Buffer.from('online');
export const OFFLINE = Buffer.from('offline');

/** Well-known locations of the system CA bundle (Debian/Ubuntu, RHEL/Fedora, Alpine, SUSE). */
const SYSTEM_CA_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/cert.pem',
  '/etc/ssl/ca-bundle.pem',
];

function readTlsFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw ternError('ERR_TLS_FILE', `${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/**
 * The trust store when no ca_file is given: the system bundle plus Node's own
 * roots plus NODE_EXTRA_CA_CERTS (which Node adds only to its default store,
 * and an explicit `ca` list replaces that store, so it is added here).
 */
function systemCa(): Array<string | Buffer> | undefined {
  let bundle: Buffer | undefined;
  for (const file of SYSTEM_CA_FILES) {
    try {
      bundle = readFileSync(file);
      break;
    } catch {
      // try the next location
    }
  }
  if (bundle === undefined) return undefined; // Node's default store: its roots and NODE_EXTRA_CA_CERTS
  const ca: Array<string | Buffer> = [bundle, ...rootCertificates];
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (extra !== undefined && extra !== '') {
    try {
      ca.push(readFileSync(extra));
    } catch {
      // Node warned about the unreadable file at start-up, as it does for its own store.
    }
  }
  return ca;
}

/** TLS options from config, reading the files once (at start, so a bad path fails the start). */
export function loadRemoteTls(tls: BridgeConfig['remote']['tls']): TlsOptions | null {
  if (!tls.enabled) return null;
  const out: TlsOptions = { rejectUnauthorized: tls.verify };
  const ca = tls.caFile !== '' ? [readTlsFile(tls.caFile, 'ca_file')] : systemCa();
  if (ca !== undefined) out.ca = ca;
  if (tls.certFile !== '') {
    out.cert = readTlsFile(tls.certFile, 'cert_file');
    out.key = readTlsFile(tls.keyFile, 'key_file');
  }
  if (tls.pfxFile !== '') out.pfx = readTlsFile(tls.pfxFile, 'pfx_file');
  if (tls.passphrase !== '') out.passphrase = tls.passphrase;
  if (tls.serverName !== '') out.servername = tls.serverName;
  return out;
}

export interface RemoteHandlers {
  up(client: MqttClient, connack: ConnackPacket): void;
  down(err: Error | undefined): void;
}

export class RemoteSide {
  readonly #config: BridgeConfig;
  readonly #link: Link;
  readonly #stateTopic: string;
  readonly #tls: TlsOptions | null;
  readonly #clientId: string;

  constructor(config: BridgeConfig, handlers: RemoteHandlers) {
    this.#config = config;
    this.#stateTopic = stateTopicOf(config);
    this.#tls = loadRemoteTls(config.remote.tls);
    this.#clientId = config.remote.clientId !== '' ? config.remote.clientId : `tern-bridge-${config.name}`;
    const level = config.remote.protocolVersion === '5' ? 5 : 4;
    this.#link = new Link(() => this.#clientOptions(level), config.remote.reconnect, [level]);
    this.#link.on('up', (client, connack) => {
      this.#announce(client);
      handlers.up(client, connack);
    });
    this.#link.on('down', (err) => handlers.down(err));
  }

  get client(): MqttClient | null {
    return this.#link.client;
  }

  get connected(): boolean {
    return this.#link.connected;
  }

  get stateTopic(): string {
    return this.#stateTopic;
  }

  get description(): string {
    const r = this.#config.remote;
    return `${this.#tls === null ? 'mqtt' : 'mqtts'}://${r.host}:${this.#port()}`;
  }

  #port(): number {
    return this.#config.remote.port ?? (this.#tls === null ? 1883 : 8883);
  }

  #clientOptions(level: 4 | 5): ClientOptions {
    const r = this.#config.remote;
    const o: ClientOptions = {
      host: r.host,
      port: this.#port(),
      protocolLevel: level,
      clientId: this.#clientId,
      clean: r.cleanSession,
      keepalive: r.keepalive,
      pingTimeoutMs: Math.min(r.keepalive * 1000, r.ackTimeoutMs),
      ackTimeoutMs: r.ackTimeoutMs,
      connectTimeoutMs: r.connectTimeoutMs,
      maxInflight: r.inflightWindow,
    };
    if (this.#tls !== null) o.tls = this.#tls;
    if (r.username !== '') o.username = r.username;
    if (r.password !== '') o.password = r.password;
    if (this.#stateTopic !== '') o.will = { topic: this.#stateTopic, payload: OFFLINE, qos: 1, retain: true };
    if (level === 5) o.properties = { sessionExpiryInterval: r.cleanSession ? 0 : r.sessionExpiryS, topicAliasMaximum: 0 };
    return o;
  }

  start(): void {
    this.#link.start();
  }

  #announce(client: MqttClient): void {
    if (this.#stateTopic === '') return;
    client.publishWithCallback(this.#stateTopic, ONLINE, 1, true, undefined, null);
  }

  /** Subscribe the [[subscribe]] rules (after a connect without a session). */
  subscribe(client: MqttClient): Promise<number[]> {
    const v5 = client.protocolLevel === 5;
    return client.subscribe(
      this.#config.subscribe.map((s) => ({ filter: s.remote, qos: s.qos, noLocal: v5, retainAsPublished: v5, retainHandling: 0 as const })),
    );
  }

  /** Publish `offline` (bounded wait for its ack), then DISCONNECT. */
  close(timeoutMs = 2000): Promise<void> {
    return this.#link.close(async (client) => {
      if (this.#stateTopic === '') return;
      const sent = client.publish(this.#stateTopic, OFFLINE, { qos: 1, retain: true });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      });
      await Promise.race([sent, timeout]).finally(() => clearTimeout(timer));
    });
  }
}
