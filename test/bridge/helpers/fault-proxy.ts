/**
 * An in-process TCP proxy between the bridge and the remote broker that
 * injects link faults:
 * - drop():      close every connection now (both sides see FIN/RST);
 * - refuse():    new connections are closed at once (the remote is "down");
 * - blackhole(): stop forwarding in both directions without closing anything,
 *                and leave new connections hanging: a half-open link;
 * - holdAcks():  stop forwarding remote -> bridge (PUBACKs, PINGRESPs are
 *                swallowed) while bridge -> remote still flows;
 * - pass():      back to normal for new connections (existing ones stay as they are).
 * With `v311Only`, an MQTT 5 CONNECT is answered like a 3.1.1-only broker
 * does (CONNACK return code 1, unacceptable protocol version) and closed.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

type Mode = 'pass' | 'refuse' | 'blackhole' | 'hold';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Forwarding state of this pair. */
  mode: Mode;
}

export class FaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #pairs = new Set<Pair>();
  #mode: Mode = 'pass';
  port = 0;
  /** Connections accepted (for asserting reconnects). */
  accepted = 0;
  /** Play a broker that only speaks MQTT 3.1.1. */
  v311Only = false;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = createServer((socket) => this.#accept(socket));
  }

  static async start(host: string, port: number): Promise<FaultProxy> {
    const proxy = new FaultProxy({ host, port });
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get mode(): Mode {
    return this.#mode;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  /** Point new connections at another port (a restarted broker). */
  retarget(port: number): void {
    this.#target.port = port;
  }

  #accept(client: Socket): void {
    this.accepted++;
    client.on('error', () => undefined);
    if (this.#mode === 'refuse') {
      client.destroy();
      return;
    }
    if (this.#mode === 'blackhole') {
      // Accept and say nothing: the CONNECT never arrives.
      const pair: Pair = { client, upstream: null as unknown as Socket, mode: 'blackhole' };
      client.on('data', () => undefined);
      client.on('close', () => this.#pairs.delete(pair));
      this.#pairs.add(pair);
      return;
    }
    const upstream = connect(this.#target);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const pair: Pair = { client, upstream, mode: 'pass' };
    this.#pairs.add(pair);
    upstream.on('error', () => client.destroy());
    let first = true;
    client.on('data', (d: Buffer) => {
      if (first && this.v311Only && connectLevel(d) === 5) {
        client.end(Buffer.from([0x20, 0x02, 0x00, 0x01]));
        upstream.destroy();
        return;
      }
      first = false;
      if (pair.mode === 'pass' || pair.mode === 'hold') upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (pair.mode === 'pass') client.write(d);
    });
    const close = (): void => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close);
    // A blackholed link stays open towards the bridge even when the broker gives up on its side.
    upstream.on('close', () => {
      if (pair.mode !== 'blackhole') close();
    });
  }

  pass(): void {
    this.#mode = 'pass';
  }

  refuse(): void {
    this.#mode = 'refuse';
    this.drop();
  }

  drop(): void {
    for (const p of this.#pairs) {
      p.client.destroy();
      (p.upstream as Socket | null)?.destroy();
    }
    this.#pairs.clear();
  }

  /** Existing links go silent both ways, without FIN; new connections hang. */
  blackhole(): void {
    this.#mode = 'blackhole';
    for (const p of this.#pairs) p.mode = 'blackhole';
  }

  /** Swallow everything the remote sends on existing links (acks withheld). */
  holdAcks(): void {
    for (const p of this.#pairs) p.mode = 'hold';
  }

  async close(): Promise<void> {
    this.drop();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Protocol level of a CONNECT at the start of `d` (0 if it is not one). */
function connectLevel(d: Buffer): number {
  if (d.length < 2 || d[0] !== 0x10) return 0;
  let i = 1;
  while (i < d.length && (d[i]! & 0x80) !== 0) i++;
  i++; // past the remaining length
  const nameLen = d.length >= i + 2 ? d.readUInt16BE(i) : 0;
  return d[i + 2 + nameLen] ?? 0;
}
