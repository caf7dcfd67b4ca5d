/**
 * A raw TCP MQTT client for integration tests: it sends hand-built bytes
 * (test/helpers/packets.ts) and reads back parsed packets, so tests can drive
 * exact flows (no automatic acks, no keep-alive, no reconnects) and observe
 * when the server closes the connection. Every wait is bounded.
 */
import net from 'node:net';
import type { TestContext } from 'node:test';
import { connect as connectPacket, PacketParser } from './packets.js';
import type { ConnackPacket, ConnectOptions, PacketMap, PacketName, ParsedPacket, ProtocolVersion } from './packets.js';

export interface RawClientOptions {
  host?: string;
  /** How server packets are parsed (v5 adds property blocks); default 4. */
  protocolVersion?: ProtocolVersion;
  /** Bound for the TCP connect itself; default 2000 ms. */
  timeoutMs?: number;
}

const DEFAULT_WAIT_MS = 2000;

function describe(p: ParsedPacket): string {
  if (p.type === 'publish') {
    return `publish(topic=${p.topic}, qos=${p.qos}, retain=${p.retain}, dup=${p.dup}, id=${p.id}, payload=${p.payload.toString()})`;
  }
  if (p.type === 'other') return `other(type=${p.packetType}, flags=${p.flags})`;
  return JSON.stringify(p);
}

export class RawClient {
  #socket: net.Socket;
  #parser: PacketParser;
  #queue: ParsedPacket[] = [];
  #waiters = new Set<() => void>();
  #closed = false;
  #closeError: Error | undefined;

  private constructor(socket: net.Socket, version: ProtocolVersion) {
    this.#socket = socket;
    this.#parser = new PacketParser(version);
    socket.on('data', (chunk: Buffer) => {
      const packets = this.#parser.push(chunk);
      if (packets.length > 0) {
        this.#queue.push(...packets);
        this.#notify();
      }
    });
    socket.on('error', (err) => {
      this.#closeError = err;
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#notify();
    });
  }

  /** Opens a TCP connection (no MQTT yet); destroyed in `t.after` when `t` is given. */
  static connect(port: number, t?: TestContext, o: RawClientOptions = {}): Promise<RawClient> {
    const timeoutMs = o.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: o.host ?? '127.0.0.1' });
      socket.setNoDelay(true);
      const client = new RawClient(socket, o.protocolVersion ?? 4);
      t?.after(() => client.close());
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`RawClient: TCP connect to port ${port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(client);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Connects and completes the MQTT handshake; throws unless CONNACK return code is 0. */
  static async connected(port: number, t: TestContext | undefined, connect: ConnectOptions = {}, o: RawClientOptions = {}): Promise<RawClient> {
    const client = await RawClient.connect(port, t, { ...o, protocolVersion: o.protocolVersion ?? (connect.protocolVersion === 5 ? 5 : 4) });
    const connack = await client.handshake(connect);
    if (connack.returnCode !== 0) throw new Error(`RawClient: CONNACK return code ${connack.returnCode}`);
    return client;
  }

  /** Sends CONNECT and waits for the CONNACK. */
  async handshake(connect: ConnectOptions = {}, timeoutMs = DEFAULT_WAIT_MS): Promise<ConnackPacket> {
    this.send(connectPacket(connect));
    return this.expectPacket('connack', timeoutMs);
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  /** True once the socket has closed (either side). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Packets received but not yet consumed. */
  get pending(): readonly ParsedPacket[] {
    return this.#queue;
  }

  send(...bufs: Buffer[]): void {
    if (this.#closed) return;
    for (const b of bufs) this.#socket.write(b);
  }

  /** Writes one buffer; false when the socket's buffer is full (wait for drained()). */
  write(buf: Buffer): boolean {
    if (this.#closed) return false;
    return this.#socket.write(buf);
  }

  /** Resolves when the socket can take more writes (or has closed). */
  drained(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      this.#socket.once('drain', done);
      this.#socket.once('close', done);
    });
  }

  /** Stops reading the socket, so the server's writes back up (slow consumer). */
  pauseReading(): void {
    this.#socket.pause();
  }

  resumeReading(): void {
    this.#socket.resume();
  }

  /** Destroys the socket without a DISCONNECT (a network failure, as the server sees it). */
  close(): void {
    if (!this.#socket.destroyed) this.#socket.destroy();
  }

  /** Resolves with the next packet; rejects on timeout or when the connection closes first. */
  async next(timeoutMs = DEFAULT_WAIT_MS, what = 'a packet'): Promise<ParsedPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const p = this.#queue.shift();
      if (p !== undefined) return p;
      if (this.#closed) {
        throw new Error(`RawClient: connection closed while waiting for ${what}${this.#closeError ? ` (${this.#closeError.message})` : ''}`);
      }
      await this.#changed(deadline - Date.now(), `timed out after ${timeoutMs} ms waiting for ${what}`);
    }
  }

  /** The next packet must be of `type` (anything else fails the test with a description). */
  async expectPacket<K extends PacketName>(type: K, timeoutMs = DEFAULT_WAIT_MS): Promise<PacketMap[K]> {
    const p = await this.next(timeoutMs, type.toUpperCase());
    if (p.type !== type) throw new Error(`RawClient: expected ${type.toUpperCase()}, got ${describe(p)}`);
    return p as PacketMap[K];
  }

  /** Asserts that no packet arrives within `ms` (a bounded negative check). */
  async expectNoPacket(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = this.#queue[0];
      if (p !== undefined) throw new Error(`RawClient: expected no packet, got ${describe(p)}`);
      const left = deadline - Date.now();
      if (left <= 0 || this.#closed) return;
      try {
        await this.#changed(left, '');
      } catch {
        return;
      }
    }
  }

  /**
   * Resolves when the server closes the connection, with the packets that were
   * received but not consumed before the close; rejects if still open after `timeoutMs`.
   */
  async expectClose(timeoutMs = DEFAULT_WAIT_MS): Promise<ParsedPacket[]> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      const unread = this.#queue.map(describe).join(', ');
      await this.#changed(deadline - Date.now(), `server did not close the connection within ${timeoutMs} ms (unread: [${unread}])`);
    }
    return this.#queue.splice(0);
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  #changed(ms: number, message: string): Promise<void> {
    return new Promise((resolve, reject) => {
      if (ms <= 0) {
        reject(new Error(`RawClient: ${message}`));
        return;
      }
      const waiter = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`RawClient: ${message}`));
      }, ms);
      this.#waiters.add(waiter);
    });
  }
}
