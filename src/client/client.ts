/**
 * MqttClient: Tern's own MQTT 3.1.1 / 5.0 client, shared by the bridge and
 * `tern bench` (as libmosquitto is shared by mosquitto's bridge and tools).
 *
 * Lifecycle: IDLE --connect()--> CONNECTING --CONNACK--> CONNECTED
 *   --loss--> WAITING (reconnect timer) --> CONNECTING ... ; end()/destroy()
 *   or a loss without `reconnect` --> CLOSED (final).
 * A failed *first* connect rejects connect() and never retries.
 *
 * Hot path: a QoS 0 publish on a connected client is one encode and one
 * socket write; writes are corked and flushed once per tick, so a burst of
 * publishes becomes one writev. QoS 1/2 costs one PendingOp per message.
 * Acks are encoded from one reused packet object.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { ReasonCode, type ProtocolLevel } from '../codec/constants.js';
import { decodePacket } from '../codec/decode.js';
import { encodePacket } from '../codec/encode.js';
import { Framer } from '../codec/framer.js';
import type {
  AckPacket,
  ConnackPacket,
  ConnectPacket,
  Packet,
  Properties,
  PublishPacket,
  QoS,
  Subscription,
} from '../codec/types.js';
import { TernError, ternError } from '../errors.js';
import { reconnectDelay } from './backoff.js';
import type { ClientEvents } from './events.js';
import { Inflight, OpState, PendingOp, type AckCallback, type PublishCallback } from './inflight.js';
import { Keepalive } from './keepalive.js';
import { resolveOptions, type ClientOptions, type ResolvedOptions } from './options.js';
import { openStream } from './transport.js';

export interface PublishOptions {
  qos?: QoS;
  retain?: boolean;
  /** v5 PUBLISH properties (ignored for 3.1.1). */
  properties?: Properties;
}

export interface SubscribeRequest {
  filter: string;
  qos?: QoS;
  /** v5 subscription options. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

export interface SubscribeOptions {
  /** QoS for filters given as plain strings (default 0). */
  qos?: QoS;
  /** v5 SUBSCRIBE properties (e.g. subscriptionIdentifiers). */
  properties?: Properties;
}

const Phase = { IDLE: 0, CONNECTING: 1, CONNECTED: 2, WAITING: 3, CLOSED: 4 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

const RESOLVED: Promise<void> = Promise.resolve();
const IGNORE: AckCallback = () => {};

export class MqttClient extends EventEmitter<ClientEvents> {
  readonly #opts: ResolvedOptions;
  readonly #level: ProtocolLevel;
  #phase: Phase = Phase.IDLE;
  #socket: Socket | null = null;
  #framer: Framer | null = null;
  #corked = false;
  readonly #inflight: Inflight;
  readonly #keepalive: Keepalive;
  /** Inbound QoS 2 ids between PUBREC and PUBREL: duplicates are not re-delivered [MQTT-4.3.3-10]. */
  readonly #inboundQos2 = new Set<number>();
  #inboundAliases: Map<number, string> | null = null;
  #firstConnect: { resolve: (c: ConnackPacket) => void; reject: (e: Error) => void } | null = null;
  #endWaiters: Array<() => void> = [];
  #closeError: Error | undefined = undefined;
  #connack: ConnackPacket | null = null;
  #clientId: string;
  #keepaliveSeconds: number;
  #serverMaxQos = 2;
  #serverMaxPacketSize = 0;
  #attempt = 0;
  #connectTimer: NodeJS.Timeout | undefined = undefined;
  #reconnectTimer: NodeJS.Timeout | undefined = undefined;
  #ackTimer: NodeJS.Timeout | undefined = undefined;
  /** Reused for QoS 0 fast-path encodes and for acks. */
  readonly #q0: PublishPacket = { type: 'publish', topic: '', payload: Buffer.alloc(0), qos: 0, retain: false, dup: false };
  readonly #ack: AckPacket = { type: 'puback', packetId: 1 };
  // Bound once per client, never per message.
  readonly #onData = (chunk: Buffer): void => this.#handleData(chunk);
  readonly #onFrame = (header: number, body: Buffer): void => this.#handleFrame(header, body);
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#socket?.uncork();
  };
  readonly #onDrain = (): void => {
    this.emit('drain');
  };

  constructor(options: ClientOptions = {}) {
    super();
    this.#opts = resolveOptions(options);
    this.#level = this.#opts.protocolLevel;
    this.#clientId = this.#opts.clientId;
    this.#keepaliveSeconds = this.#opts.keepalive;
    this.#inflight = new Inflight(this.#opts.maxInflight);
    this.#keepalive = new Keepalive({
      sendPingreq: () => this.#write(encodePacket({ type: 'pingreq' }, this.#level)),
      keepaliveTimedOut: () => this.#fail(ternError('ERR_MQTT_KEEPALIVE_TIMEOUT', 'no PINGRESP from the server')),
    });
    if (this.#level === 5 && (this.#opts.properties?.topicAliasMaximum ?? 0) > 0) this.#inboundAliases = new Map();
  }

  // ---- state ----

  get connected(): boolean {
    return this.#phase === Phase.CONNECTED;
  }

  /** end()/destroy() was called, or the connection was lost without reconnect. */
  get closed(): boolean {
    return this.#phase === Phase.CLOSED;
  }

  get protocolLevel(): 4 | 5 {
    return this.#opts.protocolLevel;
  }

  /** The client id in use (a v5 server may have assigned it). */
  get clientId(): string {
    return this.#clientId;
  }

  /** The latest accepted CONNACK. */
  get connack(): ConnackPacket | null {
    return this.#connack;
  }

  /** Unacknowledged QoS 1/2 PUBLISH. */
  get inflightCount(): number {
    return this.#inflight.publishing;
  }

  /** The in-flight window: min(maxInflight, server Receive Maximum). */
  get inflightLimit(): number {
    return this.#inflight.limit;
  }

  /** Operations waiting for the window or for a connection. */
  get queuedCount(): number {
    return this.#inflight.queued;
  }

  /** Bytes waiting in the socket's write buffer; wait for `drain` when it grows. */
  get bufferedAmount(): number {
    return this.#socket?.writableLength ?? 0;
  }

  // ---- lifecycle ----

  /** Connect once; resolves with the CONNACK, rejects if this first attempt fails (no retry). */
  connect(): Promise<ConnackPacket> {
    if (this.#phase !== Phase.IDLE) {
      return Promise.reject(ternError('ERR_CLIENT_CLOSED', 'connect() can be called once per client'));
    }
    return new Promise<ConnackPacket>((resolve, reject) => {
      this.#firstConnect = { resolve, reject };
      this.#open();
    });
  }

  /**
   * Send DISCONNECT (normal: the will is discarded [MQTT-3.14.4-3]) and close.
   * Operations still unacknowledged are rejected with ERR_CLIENT_CLOSED.
   */
  end(): Promise<void> {
    if (this.#phase === Phase.CLOSED && this.#socket === null) return RESOLVED;
    const wasConnected = this.#phase === Phase.CONNECTED;
    this.#enterClosed();
    const socket = this.#socket;
    if (socket === null) {
      this.#failAll(ternError('ERR_CLIENT_CLOSED'));
      return RESOLVED;
    }
    const done = new Promise<void>((resolve) => this.#endWaiters.push(resolve));
    if (wasConnected) {
      const disconnect: Packet =
        this.#level === 5 ? { type: 'disconnect', reasonCode: ReasonCode.NORMAL_DISCONNECTION } : { type: 'disconnect' };
      this.#write(encodePacket(disconnect, this.#level));
    }
    this.#uncork();
    socket.end();
    setTimeout(() => socket.destroy(), 1000).unref();
    return done;
  }

  /** Close at once without DISCONNECT: the server publishes the will [MQTT-3.1.2-8]. */
  destroy(): void {
    this.#enterClosed();
    if (this.#socket === null) {
      this.#failAll(ternError('ERR_CLIENT_CLOSED'));
      return;
    }
    this.#socket.destroy();
  }

  #enterClosed(): void {
    this.#phase = Phase.CLOSED;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    const first = this.#firstConnect;
    if (first !== null) {
      this.#firstConnect = null;
      first.reject(ternError('ERR_CLIENT_CLOSED', 'closed before CONNACK'));
    }
  }

  #open(): void {
    this.#phase = Phase.CONNECTING;
    this.#closeError = undefined;
    this.#corked = false;
    let opened: ReturnType<typeof openStream>;
    try {
      opened = openStream(this.#opts);
    } catch (err) {
      // e.g. unusable TLS material: report it like any failed attempt.
      this.#closeError = ternError('ERR_CLIENT_CONNECTION_LOST', (err as Error).message, { cause: err });
      process.nextTick(() => this.#handleClose());
      return;
    }
    const { socket, readyEvent } = opened;
    this.#socket = socket;
    this.#framer = new Framer({ maxPacketSize: this.#opts.maxPacketSize });
    socket.once(readyEvent, () => {
      if (this.#socket === socket) this.#sendConnect();
    });
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('error', (err) => {
      if (this.#socket === socket) this.#closeError ??= ternError('ERR_CLIENT_CONNECTION_LOST', err.message, { cause: err });
    });
    socket.on('close', () => {
      if (this.#socket === socket) this.#handleClose();
    });
    this.#connectTimer = setTimeout(() => {
      this.#fail(ternError('ERR_CLIENT_CONNECT_TIMEOUT', `${this.#opts.connectTimeoutMs} ms`));
    }, this.#opts.connectTimeoutMs);
  }

  #sendConnect(): void {
    const o = this.#opts;
    const packet: ConnectPacket = {
      type: 'connect',
      protocolName: 'MQTT',
      protocolLevel: this.#level,
      clean: o.clean,
      keepalive: o.keepalive,
      clientId: this.#clientId,
    };
    if (o.username !== undefined) packet.username = o.username;
    if (o.password !== undefined) packet.password = o.password;
    if (o.will !== undefined) packet.will = o.will;
    if (o.properties !== undefined) packet.properties = o.properties;
    try {
      this.#write(encodePacket(packet, this.#level));
    } catch (err) {
      this.#fail(err as Error);
    }
  }

  #onConnack(p: ConnackPacket): void {
    if (this.#phase !== Phase.CONNECTING) throw ternError('ERR_MQTT_PROTOCOL', 'unexpected CONNACK');
    clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
    if (p.reasonCode !== 0) {
      this.#fail(
        new TernError(
          'ERR_CLIENT_CONNECT_REFUSED',
          `connection refused by the server: return code 0x${p.reasonCode.toString(16)}${reasonString(p.properties)}`,
          p.reasonCode,
        ),
      );
      return;
    }
    this.#phase = Phase.CONNECTED;
    this.#attempt = 0;
    this.#connack = p;
    const props = p.properties;
    const o = this.#opts;
    // [MQTT-3.3.4-7] never more unacknowledged QoS 1/2 PUBLISH than the server's Receive Maximum.
    const rm = props?.receiveMaximum ?? 65535;
    if (rm === 0) throw ternError('ERR_MQTT_PROTOCOL', 'CONNACK with Receive Maximum 0 (MQTT 5.0 §3.2.2.3.3)');
    this.#inflight.limit = rm < o.maxInflight ? rm : o.maxInflight;
    // [MQTT-3.2.2-21] a Server Keep Alive replaces the requested keep-alive.
    this.#keepaliveSeconds = props?.serverKeepAlive ?? o.keepalive;
    if (props?.assignedClientIdentifier !== undefined) this.#clientId = props.assignedClientIdentifier;
    this.#serverMaxQos = props?.maximumQoS ?? 2;
    this.#serverMaxPacketSize = props?.maximumPacketSize ?? 0;
    // With manual acks an id may be held back un-acknowledged: the server resends it, and it must be delivered again.
    if (!p.sessionPresent || o.manualAcks) this.#inboundQos2.clear();
    this.#inboundAliases?.clear();
    this.#keepalive.start(this.#keepaliveSeconds, o.pingTimeoutMs);
    if (o.ackTimeoutMs > 0) {
      this.#ackTimer = setInterval(() => this.#checkAcks(), Math.max(10, o.ackTimeoutMs >> 2));
      this.#ackTimer.unref();
    }
    this.#resend(p.sessionPresent);
    this.#pump();
    const first = this.#firstConnect;
    if (first !== null) {
      this.#firstConnect = null;
      first.resolve(p);
    }
    this.emit('connect', p);
  }

  /**
   * After a reconnect. With the session present, resend unacknowledged
   * PUBLISH (DUP set [MQTT-3.3.1-1]) and PUBREL with their original ids
   * [MQTT-4.4.0-1]. Without it the server forgot them: PUBLISH goes again as
   * new, and a QoS 2 message past PUBREC is complete (the server owned it).
   */
  #resend(sessionPresent: boolean): void {
    if (this.#inflight.size === 0) return;
    const stamp = this.#opts.ackTimeoutMs > 0 ? Date.now() : 0;
    for (const op of this.#inflight.sent()) {
      const p = op.packet;
      op.sentAt = stamp;
      if (p.type !== 'publish') {
        this.#write(encodePacket(p, this.#level));
      } else if (op.state === OpState.RELEASED) {
        if (sessionPresent) {
          this.#writeAck('pubrel', p.packetId!);
        } else {
          this.#inflight.release(op);
          op.callback(null, null);
        }
      } else {
        let bytes = op.bytes!;
        if (sessionPresent) {
          bytes = Buffer.from(bytes);
          bytes[0] = bytes[0]! | 0x08;
        }
        this.#write(bytes);
      }
    }
  }

  /** Tear the current connection down with `err` as the reason. */
  #fail(err: Error): void {
    this.#closeError ??= err;
    this.#socket?.destroy();
  }

  #handleClose(): void {
    const err = this.#closeError;
    this.#socket = null;
    this.#framer = null;
    this.#corked = false;
    this.#keepalive.stop();
    clearTimeout(this.#connectTimer);
    clearInterval(this.#ackTimer);
    this.#connectTimer = undefined;
    this.#ackTimer = undefined;

    if (this.#phase === Phase.CLOSED) {
      // end() / destroy(): a requested close.
      this.#failAll(ternError('ERR_CLIENT_CLOSED'));
      const waiters = this.#endWaiters;
      this.#endWaiters = [];
      for (const w of waiters) w();
      this.emit('close', undefined);
      return;
    }
    const cause = err ?? ternError('ERR_CLIENT_CONNECTION_LOST', 'socket closed');
    const first = this.#firstConnect;
    const retry = first === null && this.#opts.reconnect !== null;
    if (!retry) {
      this.#phase = Phase.CLOSED;
      this.#firstConnect = null;
      this.#failAll(cause);
      first?.reject(cause);
    } else {
      this.#phase = Phase.WAITING;
    }
    if (this.listenerCount('error') > 0) this.emit('error', cause);
    this.emit('close', cause);
    if (retry && this.#phase === Phase.WAITING) this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delay = reconnectDelay(this.#attempt++, this.#opts.reconnect!);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#phase === Phase.WAITING) this.#open();
    }, delay);
    this.emit('reconnect', this.#attempt, delay);
  }

  #failAll(err: Error): void {
    this.#inboundQos2.clear();
    for (const op of this.#inflight.clear()) op.callback(err, null);
  }

  // ---- publish / subscribe ----

  /**
   * Publish; resolves when the server acknowledged it (PUBACK, or PUBCOMP
   * for QoS 2), or for QoS 0 once it is handed to the socket. Beyond the
   * in-flight window, and while (re)connecting, messages wait in order.
   */
  publish(topic: string, payload: Buffer | string, opts?: PublishOptions): Promise<void> {
    const buf = typeof payload === 'string' ? Buffer.from(payload) : payload;
    const qos = opts?.qos ?? 0;
    if (qos === 0 && this.#fastPathOpen()) {
      const err = this.#sendQos0(topic, buf, opts?.retain ?? false, opts?.properties);
      return err === null ? RESOLVED : Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.#publish(topic, buf, qos, opts?.retain ?? false, opts?.properties, (err) => (err === null ? resolve() : reject(err)));
    });
  }

  /**
   * The allocation-light form of publish() for bulk senders: `callback` (may
   * be null, may be shared between messages) runs once, on the same terms
   * as the promise; for QoS 0 it may run synchronously.
   */
  publishWithCallback(
    topic: string,
    payload: Buffer,
    qos: QoS,
    retain: boolean,
    properties: Properties | undefined,
    callback: PublishCallback | null,
  ): void {
    if (qos === 0 && this.#fastPathOpen()) {
      const err = this.#sendQos0(topic, payload, retain, properties);
      if (callback !== null) callback(err);
      return;
    }
    this.#publish(topic, payload, qos, retain, properties, callback ?? IGNORE);
  }

  #fastPathOpen(): boolean {
    return this.#phase === Phase.CONNECTED && this.#inflight.queued === 0;
  }

  #sendQos0(topic: string, payload: Buffer, retain: boolean, properties: Properties | undefined): Error | null {
    const p = this.#q0;
    p.topic = topic;
    p.payload = payload;
    p.retain = retain;
    p.properties = properties;
    let bytes: Buffer;
    try {
      bytes = encodePacket(p, this.#level);
    } catch (err) {
      return err as Error;
    }
    const max = this.#serverMaxPacketSize;
    if (max > 0 && bytes.length > max) return tooLarge(bytes.length, max);
    this.#write(bytes);
    return null;
  }

  #publish(
    topic: string,
    payload: Buffer,
    qos: QoS,
    retain: boolean,
    properties: Properties | undefined,
    callback: AckCallback,
  ): void {
    if (this.#phase === Phase.CLOSED) {
      process.nextTick(callback, ternError('ERR_CLIENT_CLOSED'), null);
      return;
    }
    if (qos > this.#serverMaxQos) {
      // [MQTT-3.2.2-11] never send above the server's Maximum QoS.
      process.nextTick(callback, ternError('ERR_MQTT_QOS_NOT_SUPPORTED', `server maximum QoS is ${this.#serverMaxQos}`), null);
      return;
    }
    const packet: PublishPacket = { type: 'publish', topic, payload, qos, retain, dup: false };
    if (properties !== undefined && this.#level === 5) packet.properties = properties;
    const op = new PendingOp(packet, callback);
    if (this.#fastPathOpen() && (qos === 0 || this.#inflight.hasRoom)) this.#sendOp(op);
    else this.#inflight.enqueue(op);
  }

  /** Subscribe; resolves with one granted QoS / reason code per filter (>= 0x80 = refused). */
  subscribe(
    filters: string | SubscribeRequest | ReadonlyArray<string | SubscribeRequest>,
    opts?: SubscribeOptions,
  ): Promise<number[]> {
    const list = Array.isArray(filters) ? filters : [filters as string | SubscribeRequest];
    const qos = opts?.qos ?? 0;
    const subscriptions: Subscription[] = list.map((f: string | SubscribeRequest) =>
      typeof f === 'string'
        ? { filter: f, qos, noLocal: false, retainAsPublished: false, retainHandling: 0 }
        : {
            filter: f.filter,
            qos: f.qos ?? qos,
            noLocal: f.noLocal ?? false,
            retainAsPublished: f.retainAsPublished ?? false,
            retainHandling: f.retainHandling ?? 0,
          },
    );
    const packet = { type: 'subscribe' as const, packetId: 0, subscriptions, properties: opts?.properties };
    if (packet.properties === undefined || this.#level !== 5) delete packet.properties;
    return this.#request(packet);
  }

  /** Unsubscribe; resolves with the v5 reason codes ([] for 3.1.1). */
  unsubscribe(filters: string | readonly string[], properties?: Properties): Promise<number[]> {
    const packet = {
      type: 'unsubscribe' as const,
      packetId: 0,
      filters: typeof filters === 'string' ? [filters] : [...filters],
      properties,
    };
    if (packet.properties === undefined || this.#level !== 5) delete packet.properties;
    return this.#request(packet);
  }

  #request(packet: PendingOp['packet']): Promise<number[]> {
    if (this.#phase === Phase.CLOSED) return Promise.reject(ternError('ERR_CLIENT_CLOSED'));
    return new Promise<number[]>((resolve, reject) => {
      const op = new PendingOp(packet, (err, codes) => (err === null ? resolve(codes ?? []) : reject(err)));
      if (this.#fastPathOpen()) this.#sendOp(op);
      else this.#inflight.enqueue(op);
    });
  }

  /** Put one operation on the wire (connected; window checked by the caller). */
  #sendOp(op: PendingOp): void {
    const p = op.packet;
    if (p.type === 'publish' && p.qos === 0) {
      op.callback(this.#sendQos0(p.topic, p.payload, p.retain, p.properties), null);
      return;
    }
    const inflight = this.#inflight;
    inflight.assign(op);
    let bytes: Buffer;
    try {
      bytes = encodePacket(p, this.#level);
    } catch (err) {
      inflight.release(op);
      op.callback(err as Error, null);
      return;
    }
    const max = this.#serverMaxPacketSize;
    if (max > 0 && bytes.length > max) {
      inflight.release(op);
      op.callback(tooLarge(bytes.length, max), null);
      return;
    }
    op.state = OpState.SENT;
    if (p.type === 'publish') op.bytes = bytes;
    if (this.#opts.ackTimeoutMs > 0) op.sentAt = Date.now();
    this.#write(bytes);
  }

  /** Send queued operations while connected and the window allows. */
  #pump(): void {
    if (this.#phase !== Phase.CONNECTED) return;
    const inflight = this.#inflight;
    for (let op = inflight.peekQueued(); op !== undefined; op = inflight.peekQueued()) {
      if (op.windowed && !inflight.hasRoom) return;
      inflight.shiftQueued();
      this.#sendOp(op);
      if (this.#phase !== Phase.CONNECTED) return;
    }
  }

  /** The flow of `op` ended with ack `rc` (a v5 reason code, absent = success). */
  #complete(op: PendingOp, rc: number | undefined, ackName: string): void {
    this.#inflight.release(op);
    if (rc !== undefined && rc >= 0x80) {
      const detail = `${ackName} reason 0x${rc.toString(16)}`;
      op.callback(new TernError('ERR_CLIENT_REJECTED', `request rejected by the server: ${detail}`, rc), null);
    } else {
      op.callback(null, null);
    }
    if (this.#inflight.queued > 0) this.#pump();
  }

  // ---- writing ----

  #write(bytes: Buffer): void {
    const socket = this.#socket;
    if (socket === null) return;
    if (!this.#corked) {
      this.#corked = true;
      socket.cork();
      process.nextTick(this.#uncork);
    }
    socket.write(bytes);
    this.#keepalive.wrote = true;
  }

  #writeAck(type: AckPacket['type'], packetId: number): void {
    const ack = this.#ack;
    ack.type = type;
    ack.packetId = packetId;
    this.#write(encodePacket(ack, this.#level));
  }

  #checkAcks(): void {
    const oldest = this.#inflight.oldest();
    if (oldest !== undefined && Date.now() - oldest.sentAt > this.#opts.ackTimeoutMs) {
      this.#fail(ternError('ERR_CLIENT_ACK_TIMEOUT', `${this.#opts.ackTimeoutMs} ms for packet ${oldest.packet.packetId ?? 0}`));
    }
  }

  // ---- reading ----

  #handleData(chunk: Buffer): void {
    const framer = this.#framer;
    if (framer === null) return;
    try {
      framer.push(chunk, this.#onFrame);
    } catch (err) {
      this.#protocolFailure(err as Error);
    }
  }

  #protocolFailure(err: Error): void {
    if (this.#level === 5 && this.#phase === Phase.CONNECTED && err instanceof TernError && err.reasonCode !== undefined) {
      // MQTT 5.0 §4.13: tell a v5 server why before closing.
      this.#write(encodePacket({ type: 'disconnect', reasonCode: err.reasonCode }, 5));
      this.#uncork();
    }
    this.#fail(err);
  }

  #handleFrame(header: number, body: Buffer): void {
    if (this.#socket === null) return;
    const packet = decodePacket(header, body, this.#level);
    const phase = this.#phase;
    if (phase === Phase.CONNECTED) {
      this.#dispatch(packet);
    } else if (phase === Phase.CONNECTING) {
      // [MQTT-3.2.0-1] the first packet from the server is CONNACK.
      if (packet.type !== 'connack') throw ternError('ERR_MQTT_PROTOCOL', `${packet.type} before CONNACK`);
      this.#onConnack(packet);
    }
    // CLOSED: end() is flushing; whatever still arrives is dropped.
  }

  #dispatch(packet: Packet): void {
    switch (packet.type) {
      case 'publish':
        this.#onPublish(packet);
        return;
      case 'puback': {
        const op = this.#inflight.get(packet.packetId);
        if (op !== undefined && op.state === OpState.SENT && op.packet.type === 'publish' && op.packet.qos === 1) {
          this.#complete(op, packet.reasonCode, 'PUBACK');
        }
        return;
      }
      case 'pubrec': {
        const op = this.#inflight.get(packet.packetId);
        if (op !== undefined && op.state === OpState.SENT && op.packet.type === 'publish' && op.packet.qos === 2) {
          const rc = packet.reasonCode;
          if (rc !== undefined && rc >= 0x80) {
            // [MQTT-4.3.3-4] PUBREL only answers a PUBREC below 0x80: a failing PUBREC ends the flow.
            this.#complete(op, rc, 'PUBREC');
            return;
          }
          op.state = OpState.RELEASED;
          op.bytes = null;
        }
        // A PUBREC for a released or unknown id is answered with PUBREL too, so the server can finish.
        this.#writeAck('pubrel', packet.packetId);
        return;
      }
      case 'pubcomp': {
        const op = this.#inflight.get(packet.packetId);
        if (op !== undefined && op.state === OpState.RELEASED) this.#complete(op, packet.reasonCode, 'PUBCOMP');
        return;
      }
      case 'pubrel':
        // [MQTT-4.3.3-11] answer with PUBCOMP; [MQTT-4.3.3-12] a later PUBLISH with this id is new.
        this.#inboundQos2.delete(packet.packetId);
        this.#writeAck('pubcomp', packet.packetId);
        return;
      case 'suback':
      case 'unsuback': {
        const op = this.#inflight.get(packet.packetId);
        const expected = packet.type === 'suback' ? 'subscribe' : 'unsubscribe';
        if (op === undefined || op.packet.type !== expected) {
          throw ternError('ERR_MQTT_PROTOCOL', `${packet.type} for unknown packet identifier ${packet.packetId}`);
        }
        this.#inflight.release(op);
        op.callback(null, packet.reasonCodes);
        if (this.#inflight.queued > 0) this.#pump();
        return;
      }
      case 'pingresp':
        this.emit('pingresp', this.#keepalive.pingresp());
        return;
      case 'disconnect': {
        const rc = packet.reasonCode ?? 0;
        this.#closeError ??= new TernError(
          'ERR_CLIENT_CONNECTION_LOST',
          `connection lost: server sent DISCONNECT with reason 0x${rc.toString(16)}${reasonString(packet.properties)}`,
          rc,
        );
        this.emit('disconnect', packet);
        this.#socket?.destroy();
        return;
      }
      default:
        // CONNACK twice, CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, AUTH (enhanced auth is not supported).
        throw ternError('ERR_MQTT_PROTOCOL', `unexpected ${packet.type} from the server`);
    }
  }

  #onPublish(p: PublishPacket): void {
    const props = p.properties;
    if (props !== undefined && props.topicAlias !== undefined) this.#resolveAlias(p, props.topicAlias);
    const qos = p.qos;
    if (qos === 0) {
      this.emit('message', p);
    } else if (qos === 1) {
      this.emit('message', p);
      if (!this.#opts.manualAcks) this.#writeAck('puback', p.packetId!);
    } else {
      const id = p.packetId!;
      // [MQTT-4.3.3-10] method B: deliver on first receipt, not again until PUBREL.
      if (!this.#inboundQos2.has(id)) {
        this.#inboundQos2.add(id);
        this.emit('message', p);
        if (this.#opts.manualAcks) return;
      } else if (this.#opts.manualAcks) {
        return; // the caller's ack() answers it
      }
      this.#writeAck('pubrec', id);
    }
  }

  /**
   * With `manualAcks`: acknowledge an inbound PUBLISH received on the current
   * connection (PUBACK for QoS 1, PUBREC for QoS 2). An ack for a message of
   * an earlier connection must not be sent: the server resends that message.
   */
  ack(packetId: number, qos: 1 | 2): void {
    if (this.#phase !== Phase.CONNECTED) return;
    this.#writeAck(qos === 1 ? 'puback' : 'pubrec', packetId);
  }

  #resolveAlias(p: PublishPacket, alias: number): void {
    const aliases = this.#inboundAliases;
    const max = this.#opts.properties?.topicAliasMaximum ?? 0;
    if (aliases === null || alias === 0 || alias > max) {
      // [MQTT-3.3.2-11] the server may not exceed our Topic Alias Maximum: a protocol error.
      throw ternError('ERR_MQTT_TOPIC_ALIAS_INVALID', `topic alias ${alias} (maximum ${max})`);
    }
    if (p.topic.length > 0) {
      aliases.set(alias, p.topic);
      return;
    }
    const topic = aliases.get(alias);
    if (topic === undefined) throw ternError('ERR_MQTT_PROTOCOL', `unknown topic alias ${alias}`);
    p.topic = topic;
  }
}

function reasonString(props: Properties | undefined): string {
  return props?.reasonString !== undefined ? ` (${props.reasonString})` : '';
}

function tooLarge(size: number, max: number): TernError {
  return ternError('ERR_MQTT_PACKET_TOO_LARGE', `PUBLISH of ${size} bytes exceeds the server maximum of ${max}`);
}
