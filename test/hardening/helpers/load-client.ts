/**
 * LoadClient: a lean MQTT client over a raw socket for the hardening tests
 * and the soak run. Packets are built by test/helpers/packets.ts (never by
 * the broker's codec). It can pipeline thousands of QoS 1/2 publishes and
 * tells, per packet id, how the broker answered (the reason code of the
 * PUBACK / PUBREC / PUBCOMP), acknowledges what it receives (or not, for a
 * slow consumer) and reports how the connection ended (a DISCONNECT reason
 * or a plain close). No reconnects, no keep-alive pings: a test decides.
 */
import net from 'node:net';
import * as P from '../../helpers/packets.js';

export interface LoadClientOptions {
  port: number;
  host?: string;
  /** Local address to connect from (127.0.0.x spreads many clients over more ephemeral ports). */
  localAddress?: string;
  clientId: string;
  /** 4 (3.1.1, default) or 5. */
  version?: 4 | 5;
  /** Clean session / clean start; default true. */
  clean?: boolean;
  /** v5 session expiry interval, seconds (persistent sessions). */
  sessionExpiry?: number;
  keepalive?: number;
  will?: P.WillOptions;
  /** Acknowledge received QoS 1/2 PUBLISH; default true. */
  autoAck?: boolean;
  /** Bound for TCP connect + CONNACK; default 5000 ms. */
  timeoutMs?: number;
  /** Set as `onMessage` before CONNECT goes out (a resumed session's messages may follow the CONNACK at once). */
  onMessage?: (p: P.PublishPacket) => void;
  /**
   * QoS 2 packet ids received and not yet released (PUBREL), kept by the
   * caller across the connections of one session: a PUBLISH resent with such
   * an id is the same message and is not passed to onMessage again (the
   * receiver's half of exactly once).
   */
  qos2Held?: Set<number>;
}

/** How the broker answered one QoS 1/2 publish. */
export interface Ack {
  id: number;
  /** 0 (success), another v5 reason code (0x10 no matching subscribers counts as accepted), or -1: the connection closed first. */
  code: number;
  tag: unknown;
}

/** Ack reason codes that mean "the broker took the message" (v5: 0x00 success, 0x10 no matching subscribers). */
export function accepted(code: number): boolean {
  return code === 0 || code === 0x10;
}

interface Pending {
  qos: 1 | 2;
  tag: unknown;
  resolve: ((code: number) => void) | undefined;
}

export class LoadClient {
  readonly socket: net.Socket;
  readonly clientId: string;
  readonly version: 4 | 5;
  sessionPresent = false;
  /** Reason code of a DISCONNECT from the broker (v5), if one came. */
  disconnectReason: number | undefined = undefined;
  /** Called for every PUBLISH received (before it is acknowledged). */
  onMessage: ((p: P.PublishPacket) => void) | null = null;
  /** Called when a QoS 1/2 publish of ours is answered (or lost with the connection: code -1). */
  onAck: ((ack: Ack) => void) | null = null;
  /** PUBLISH packets received. */
  received = 0;
  /** The first socket error (ECONNRESET, ...), if any. */
  socketError: string | undefined = undefined;
  autoAck: boolean;
  readonly closed: Promise<void>;
  readonly #qos2Held: Set<number> | undefined;
  #isClosed = false;
  readonly #parser: P.PacketParser;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #waiters: Array<{ type: P.PacketName; id: number | undefined; resolve: (p: P.ParsedPacket) => void }> = [];

  private constructor(socket: net.Socket, opts: LoadClientOptions) {
    this.socket = socket;
    this.clientId = opts.clientId;
    this.version = opts.version ?? 4;
    this.autoAck = opts.autoAck ?? true;
    this.onMessage = opts.onMessage ?? null;
    this.#qos2Held = opts.qos2Held;
    this.#parser = new P.PacketParser(this.version);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      for (const p of this.#parser.push(chunk)) this.#handle(p);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.socketError ??= err.code ?? err.message;
    });
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.#isClosed = true;
        const lost = [...this.#pending];
        this.#pending.clear();
        for (const [id, p] of lost) this.#settle(id, p, -1);
        resolve();
      });
    });
  }

  /** Connect and complete the handshake; rejects unless CONNACK says 0. */
  static async connect(opts: LoadClientOptions): Promise<LoadClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    const socket = net.connect({ port: opts.port, host: opts.host ?? '127.0.0.1', ...(opts.localAddress !== undefined ? { localAddress: opts.localAddress } : {}) });
    const client = new LoadClient(socket, opts);
    const version = client.version;
    const properties: Array<[number, number]> = [];
    if (version === 5 && opts.sessionExpiry !== undefined) properties.push([0x11, opts.sessionExpiry]);
    socket.write(
      P.connect({
        protocolVersion: version,
        clientId: opts.clientId,
        clean: opts.clean ?? true,
        keepalive: opts.keepalive ?? 0,
        ...(opts.will !== undefined ? { will: opts.will } : {}),
        properties,
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    try {
      const connack = await Promise.race([
        client.#waitFor('connack', undefined),
        client.closed.then(() => {
          throw new Error(`LoadClient ${opts.clientId}: closed before CONNACK (${client.socketError ?? 'closed by the server'})`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`LoadClient ${opts.clientId}: no CONNACK within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const c = connack as P.ConnackPacket;
      if (c.returnCode !== 0) throw new Error(`LoadClient ${opts.clientId}: CONNACK ${c.returnCode}`);
      client.sessionPresent = c.sessionPresent;
      return client;
    } catch (err) {
      socket.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** QoS 1/2 publishes not answered yet. */
  get inflight(): number {
    return this.#pending.size;
  }

  /** True while the socket's own buffer is below its high-water mark. */
  get writable(): boolean {
    return !this.#isClosed && !this.socket.writableNeedDrain;
  }

  /**
   * Send one PUBLISH; returns its packet id (0 for QoS 0). `tag` comes back
   * in onAck. Does not wait: check `writable` / await drained() to respect
   * backpressure, and `inflight` for a window.
   */
  publish(topic: string, payload: Buffer | string, qos: 0 | 1 | 2, tag?: unknown, retain = false): number {
    if (this.#isClosed) return 0;
    let id = 0;
    if (qos > 0) {
      id = this.#allocate();
      this.#pending.set(id, { qos: qos as 1 | 2, tag, resolve: undefined });
    }
    this.socket.write(P.publish({ topic, payload, qos, id: qos > 0 ? id : undefined, retain, protocolVersion: this.version }));
    return id;
  }

  /** Publish and wait for the broker's answer; resolves with the reason code (-1: closed first). */
  publishAcked(topic: string, payload: Buffer | string, qos: 1 | 2, retain = false): Promise<number> {
    if (this.#isClosed) return Promise.resolve(-1);
    const id = this.#allocate();
    return new Promise((resolve) => {
      this.#pending.set(id, { qos, tag: undefined, resolve });
      this.socket.write(P.publish({ topic, payload, qos, id, retain, protocolVersion: this.version }));
    });
  }

  /** Subscribe and wait for the SUBACK's codes. */
  async subscribe(filters: ReadonlyArray<P.SubscriptionRequest | string>, timeoutMs = 5000): Promise<number[]> {
    const id = this.#allocate();
    this.socket.write(P.subscribe(id, filters, { protocolVersion: this.version }));
    const suback = (await this.#waitWithin('suback', id, timeoutMs)) as P.SubackPacket;
    return suback.granted;
  }

  /** PINGREQ and wait for PINGRESP (a round trip through the broker's loop). */
  async ping(timeoutMs = 5000): Promise<void> {
    this.socket.write(P.pingreq());
    await this.#waitWithin('pingresp', undefined, timeoutMs);
  }

  /** Resolves when the socket can take more (or has closed). */
  drained(): Promise<void> {
    if (this.#isClosed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** DISCONNECT (no will) and close; resolves when closed. */
  async end(): Promise<void> {
    if (!this.#isClosed) {
      this.socket.end(P.disconnect(this.version === 5 ? 0 : undefined));
      const timer = setTimeout(() => this.socket.destroy(), 2000);
      await this.closed;
      clearTimeout(timer);
    }
  }

  /** Close without DISCONNECT (a network failure as the broker sees it: the will goes out). */
  destroy(): void {
    this.socket.destroy();
  }

  #allocate(): number {
    let id = this.#nextId;
    while (this.#pending.has(id)) id = id === 65535 ? 1 : id + 1;
    this.#nextId = id === 65535 ? 1 : id + 1;
    return id;
  }

  #settle(id: number, p: Pending, code: number): void {
    if (p.resolve !== undefined) p.resolve(code);
    else this.onAck?.({ id, code, tag: p.tag });
  }

  #handle(p: P.ParsedPacket): void {
    switch (p.type) {
      case 'publish': {
        this.received++;
        const held = this.#qos2Held;
        const resent = held !== undefined && p.qos === 2 && held.has(p.id!);
        if (held !== undefined && p.qos === 2) held.add(p.id!);
        if (!resent) this.onMessage?.(p);
        if (this.autoAck && p.id !== undefined) {
          this.socket.write(p.qos === 1 ? P.puback(p.id) : P.pubrec(p.id));
        }
        return;
      }
      case 'pubrel':
        this.#qos2Held?.delete(p.id);
        this.socket.write(P.pubcomp(p.id));
        return;
      case 'puback':
      case 'pubcomp':
      case 'pubrec': {
        const pending = this.#pending.get(p.id);
        if (pending === undefined) break;
        const code = p.reasonCode ?? 0;
        if (p.type === 'pubrec' && code < 0x80) {
          // QoS 2 goes on: PUBREL, and the answer is the PUBCOMP.
          this.socket.write(P.pubrel(p.id));
          return;
        }
        this.#pending.delete(p.id);
        this.#settle(p.id, pending, code);
        return;
      }
      case 'disconnect':
        this.disconnectReason = p.reasonCode;
        break;
      default:
        break;
    }
    for (let i = 0; i < this.#waiters.length; i++) {
      const w = this.#waiters[i]!;
      if (w.type !== p.type) continue;
      if (w.id !== undefined && (p as { id?: number }).id !== w.id) continue;
      this.#waiters.splice(i, 1);
      w.resolve(p);
      return;
    }
  }

  #waitFor(type: P.PacketName, id: number | undefined): Promise<P.ParsedPacket> {
    return new Promise((resolve) => this.#waiters.push({ type, id, resolve }));
  }

  async #waitWithin(type: P.PacketName, id: number | undefined, timeoutMs: number): Promise<P.ParsedPacket> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#waitFor(type, id),
        this.closed.then(() => {
          throw new Error(`LoadClient ${this.clientId}: closed while waiting for ${type}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`LoadClient ${this.clientId}: no ${type} within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** One of 127.0.0.2 .. 127.0.0.17 by `i`: many connections need more ephemeral ports than one source address has. */
export function loopbackSource(i: number): string {
  return `127.0.0.${2 + (i % 16)}`;
}

/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/**
 * Round trip of a QoS 1 publish to a topic `probe` itself subscribes to:
 * the median of `n`, in ms (the median: other test files load this machine).
 * Each round trip must finish within `timeoutMs`.
 */
export async function probeLatency(probe: LoadClient, topic: string, n: number, timeoutMs = 20_000): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    let timer: NodeJS.Timeout | undefined;
    const got = new Promise<void>((resolve, reject) => {
      probe.onMessage = (p) => {
        if (p.topic === topic) resolve();
      };
      timer = setTimeout(() => reject(new Error(`probe: no round trip within ${timeoutMs} ms`)), timeoutMs);
    });
    const t0 = performance.now();
    try {
      const code = await Promise.race([probe.publishAcked(topic, String(i), 1), got.then(() => 0)]);
      if (code === -1) throw new Error('probe: connection closed');
      await got;
    } finally {
      clearTimeout(timer);
    }
    samples.push(performance.now() - t0);
  }
  probe.onMessage = null;
  return median(samples);
}
