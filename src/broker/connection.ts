/**
 * One client connection over any Duplex (P1): bytes in -> Framer -> decode ->
 * dispatch; packets out -> one batched write per tick (cork until nextTick,
 * so a fan-out burst becomes one writev) with backpressure tracking.
 *
 * The connection knows the wire (protocol level, per-connection v5 limits,
 * topic aliases); the session knows delivery state. Errors thrown while
 * handling a packet close this connection only, with the error's reason code.
 */
import type { Duplex } from 'node:stream';
import type { ProtocolLevel } from '../codec/constants.js';
import { PacketType, ReasonCode } from '../codec/constants.js';
import { decodePacket } from '../codec/decode.js';
import { encodePacket } from '../codec/encode.js';
import { Framer } from '../codec/framer.js';
import { stampPacketId } from '../codec/publish.js';
import type { AuthPacket, Packet } from '../codec/types.js';
import { TernError, ternError } from '../errors.js';
import { PublishRate, RATE_DISCONNECT, RATE_OK, wireBytes, type PublishRateLimits } from './rate-limit.js';
import type { Outbound, Session, SessionLink } from './session.js';

export interface ConnectionInfo {
  /** Remote address as seen by the transport. */
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Listener name, e.g. `tcp:127.0.0.1:1883`. */
  readonly listener: string;
}

/** What a connection needs from the broker. */
export interface ConnectionHost {
  readonly stats: { bytesReceived: number; bytesSent: number; publishSentByQos: number[] };
  readonly maxPacketSize: number;
  readonly maxInflight: number;
  readonly socketHighWaterMark: number;
  readonly drainTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Read at use time: a reload may swap `limits`. */
  readonly config: { readonly limits: PublishRateLimits };
  onPacket(conn: Connection, packet: Packet): void;
  onClosed(conn: Connection): void;
  onProtocolError(conn: Connection, err: TernError): void;
}

const enum Phase {
  AwaitingConnect,
  Connecting,
  Connected,
  Closing,
  Closed,
}

/** Bytes of one read handled per event-loop turn (see #handleData). */
const READ_SLICE = 16 * 1024;
/** The slice while a client is over its publish rate: its rate is checked after every slice, so it overshoots little. */
const THROTTLED_SLICE = 1024;

/** Topics shorter than this are sent in full: an alias would save too little to cost a per-client encoding. */
const MIN_ALIASED_TOPIC = 8;

export class Connection implements SessionLink {
  readonly stream: Duplex;
  readonly info: ConnectionInfo;
  readonly host: ConnectionHost;
  level: ProtocolLevel = 4;
  /** The protocol level byte of the CONNECT as sent (even one we do not speak). */
  requestedLevel = 0;
  clientId = '';
  username: string | undefined = undefined;
  session: Session | null = null;
  keepalive = 0;
  lastActivity = Date.now();
  /** When the connection was accepted (ms epoch). */
  readonly connectedAt = Date.now();
  /** DISCONNECT received (normal): no will [MQTT-3.1.2-10]. */
  cleanDisconnect = false;
  /** Why the broker closed it, for logs and events. */
  closeReason: string | undefined = undefined;
  // v5 limits announced by the client in CONNECT.
  clientReceiveMaximum = 65535;
  clientMaximumPacketSize = 0;
  clientTopicAliasMaximum = 0;
  /** Inbound topic aliases (alias -> topic), v5. */
  inboundAliases: Map<number, string> | null = null;
  /** Inbound QoS 1/2 PUBLISH whose ack waits for storage, for receive-maximum enforcement. */
  inboundUnacked = 0;
  /** The last ack still waiting for storage; later acks queue behind it. */
  ackTail: Promise<void> | null = null;
  /** Packets that arrived while an async CONNECT was being handled. */
  pending: Packet[] | null = null;
  /** The v5 authentication method of this connection (enhanced authentication). */
  authMethod: string | undefined = undefined;
  /** Set while an authentication step waits for the client's next AUTH packet. */
  authWaiter: ((packet: AuthPacket) => void) | null = null;

  /** Outbound topic aliases (topic -> alias) within the client's maximum, v5. */
  #outAliases: Map<string, number> | null = null;
  #phase = Phase.AwaitingConnect;
  readonly #framer: Framer;
  /** The unread part of a large read being fed slice by slice. */
  #rest: Buffer | null = null;
  /** READ_SLICE, or THROTTLED_SLICE while the client is over its publish rate. */
  #slice = READ_SLICE;
  #corked = false;
  #keepaliveTimer: NodeJS.Timeout | undefined = undefined;
  #drainTimer: NodeJS.Timeout | undefined = undefined;
  /** PUBLISH packets and their wire bytes read since the last rate check. */
  #readPublishes = 0;
  #readPublishBytes = 0;
  /** Publish-rate buckets, made on the first check with a limit on. */
  #rate: PublishRate | null = null;
  /** Set while reading is paused because the client is over its publish rate. */
  #rateTimer: NodeJS.Timeout | undefined = undefined;
  /** Shutting down: nothing more is read (see quiesce()). */
  #quiesced = false;
  readonly #onData: (chunk: Buffer) => void;
  readonly #onPacket: (header: number, body: Buffer) => void;

  constructor(stream: Duplex, info: ConnectionInfo, host: ConnectionHost) {
    this.stream = stream;
    this.info = info;
    this.host = host;
    this.#framer = new Framer({ maxPacketSize: host.maxPacketSize });
    this.#onPacket = (header, body) => this.#handleFrame(header, body);
    this.#onData = (chunk) => this.#handleData(chunk);
    stream.on('data', this.#onData);
    stream.on('error', () => this.destroy('socket error'));
    stream.on('close', () => this.#closed());
    stream.on('end', () => this.destroy('peer closed'));
    stream.on('drain', () => this.#drained());
    this.#keepaliveTimer = setTimeout(() => this.#connectTimeout(), host.connectTimeoutMs);
  }

  get connected(): boolean {
    return this.#phase === Phase.Connected;
  }

  get closed(): boolean {
    return this.#phase >= Phase.Closing;
  }

  markConnecting(): void {
    this.#phase = Phase.Connecting;
    this.pending = [];
  }

  /** CONNACK sent: start keep-alive and release pipelined packets. */
  markConnected(keepalive: number): void {
    this.#phase = Phase.Connected;
    this.keepalive = keepalive;
    clearTimeout(this.#keepaliveTimer);
    this.#keepaliveTimer = undefined;
    if (keepalive > 0) this.#armKeepalive(keepalive * 1500);
    this.release();
  }

  /**
   * Hold this connection's next packets (an asynchronous hook is deciding on
   * the current one), so they are handled in order once it is released.
   */
  hold(): void {
    this.pending ??= [];
  }

  /** The client's next AUTH packet during an authentication exchange (null if it closes first). */
  nextAuth(): Promise<AuthPacket | null> {
    this.hold();
    return new Promise((resolve) => {
      const closed = (): void => resolve(null);
      this.stream.once('close', closed);
      this.authWaiter = (packet) => {
        this.stream.off('close', closed);
        resolve(packet);
      };
    });
  }

  /** Handle the packets held since hold() (or since CONNECT), in order. */
  release(): void {
    while (this.pending !== null) {
      const pending = this.pending;
      this.pending = null;
      for (let i = 0; i < pending.length; i++) {
        if (this.closed) return;
        this.#dispatch(pending[i]!);
        if (this.pending !== null) {
          // Held again by one of them: keep the rest behind the new hold.
          (this.pending as Packet[]).push(...pending.slice(i + 1));
          return;
        }
      }
    }
  }

  get isAwaitingConnect(): boolean {
    return this.#phase === Phase.AwaitingConnect;
  }

  // ---- SessionLink ----

  get sendWindow(): number {
    const max = this.host.maxInflight;
    return this.clientReceiveMaximum < max ? this.clientReceiveMaximum : max;
  }

  get congested(): boolean {
    return this.stream.writableLength > this.host.socketHighWaterMark;
  }

  sendPublish(out: Outbound, dup: boolean): boolean {
    const message = out.message;
    let bytes: Buffer;
    const ids = out.subscriptionIds;
    let newAlias = 0;
    const aliasable = this.level === 5 && this.clientTopicAliasMaximum > 0 && message.topic.length >= MIN_ALIASED_TOPIC;
    if (this.level === 5 && (aliasable || (ids !== undefined && ids.length > 0) || message.expiresAt !== undefined)) {
      // Per-subscriber properties: this delivery gets its own encoding.
      let properties = message.propertiesFor(ids);
      let topic = message.topic;
      if (aliasable) {
        const aliases = (this.#outAliases ??= new Map());
        const alias = aliases.get(topic);
        if (alias !== undefined) {
          // [MQTT-3.3.2-?] a known alias: empty topic, alias property.
          properties = { ...properties, topicAlias: alias };
          topic = '';
        } else if (aliases.size < this.clientTopicAliasMaximum) {
          newAlias = aliases.size + 1;
          properties = { ...properties, topicAlias: newAlias };
        }
      }
      const packet = message.toPacket(out.qos, out.retain, properties);
      packet.topic = topic;
      if (out.qos > 0) packet.packetId = out.packetId;
      packet.dup = dup;
      bytes = encodePacket(packet, 5);
    } else {
      const enc = message.encoded(this.level, out.qos, out.retain);
      bytes = out.qos === 0 ? enc.buffer : stampPacketId(enc, out.packetId, dup);
    }
    const max = this.clientMaximumPacketSize;
    if (max > 0 && bytes.length > max) {
      // [MQTT-3.1.2-25] never send a packet larger than the client allows; drop it.
      this.session?.host.onDrop(this.session, out, 'too_large');
      return false;
    }
    // The alias is the client's only once the packet that sets it is sent.
    if (newAlias !== 0) this.#outAliases!.set(message.topic, newAlias);
    this.host.stats.publishSentByQos[out.qos]!++;
    this.write(bytes);
    return true;
  }

  sendPubrel(packetId: number): void {
    this.send({ type: 'pubrel', packetId });
  }

  // ---- writing ----

  send(packet: Packet): void {
    this.write(encodePacket(packet, this.level));
  }

  write(bytes: Buffer): void {
    if (this.#phase === Phase.Closed) return;
    const stream = this.stream;
    if (!this.#corked) {
      this.#corked = true;
      stream.cork();
      process.nextTick(uncork, this);
    }
    stream.write(bytes);
    this.host.stats.bytesSent += bytes.length;
    if (this.#drainTimer === undefined && stream.writableLength > this.host.socketHighWaterMark) {
      this.#drainTimer = setTimeout(() => this.destroy('slow consumer: socket not drained in time'), this.host.drainTimeoutMs);
    }
  }

  /** @internal called by the nextTick scheduled in write(). */
  flush(): void {
    this.#corked = false;
    this.stream.uncork();
  }

  /**
   * Close with a reason: v5 clients get a DISCONNECT carrying it (when
   * connected) [MQTT-4.13.2-1]; v3.1.1 clients are simply closed.
   */
  disconnect(reasonCode: number, reason: string, reasonString?: string): void {
    if (this.closed) return;
    this.closeReason = reason;
    if (this.level === 5 && this.#phase === Phase.Connected) {
      // The reason string is optional: leave it out if it would exceed the client's
      // maximum packet size [MQTT-3.14.2-3] (3 bytes of header + 3 of property framing).
      const max = this.clientMaximumPacketSize;
      const fits = reasonString !== undefined && (max === 0 || Buffer.byteLength(reasonString) + 8 <= max);
      this.send(fits ? { type: 'disconnect', reasonCode, properties: { reasonString } } : { type: 'disconnect', reasonCode });
    }
    this.end();
  }

  /**
   * Shutting down: read nothing more from this client, so the broker can
   * finish (store and acknowledge) what it has read before disconnecting.
   * Bytes it sent meanwhile stay unread: what it gets no ack for it resends.
   */
  quiesce(): void {
    if (this.closed) return;
    this.#quiesced = true;
    this.stream.pause();
  }

  /** Flush what is written, then close. */
  end(): void {
    if (this.closed) return;
    this.#phase = Phase.Closing;
    this.#stopTimers();
    this.stream.removeListener('data', this.#onData);
    // Reading may be paused (a sliced read, the publish rate): unread bytes are dropped, so the peer's FIN is seen.
    this.stream.resume();
    if (this.#corked) this.flush();
    this.stream.end();
    // Do not wait for a peer that never reads.
    setTimeout(() => this.stream.destroy(), 1000).unref();
  }

  /** Close at once, without flushing. */
  destroy(reason: string): void {
    if (this.#phase === Phase.Closed) return;
    this.closeReason ??= reason;
    this.#stopTimers();
    this.stream.destroy();
  }

  // ---- reading ----

  /**
   * Fairness: a read of up to 64 KiB can hold thousands of small packets. It
   * is fed to the framer in READ_SLICE pieces, one per event-loop turn, with
   * the socket paused meanwhile, so one flooding client cannot hold the loop
   * for long while others wait.
   */
  #handleData(chunk: Buffer): void {
    if (this.#quiesced) return;
    this.lastActivity = Date.now();
    this.host.stats.bytesReceived += chunk.length;
    const slice = this.#slice;
    if (chunk.length <= slice) {
      this.#feed(chunk);
      if (this.#readPublishes !== 0 && !this.closed) this.#throttle();
      return;
    }
    this.stream.pause();
    this.#rest = chunk;
    this.#feedSlice();
  }

  readonly #feedSlice = (): void => {
    const chunk = this.#rest;
    if (chunk === null || this.closed || this.#quiesced) return;
    const slice = this.#slice;
    this.#rest = chunk.length > slice ? chunk.subarray(slice) : null;
    this.#feed(chunk.length > slice ? chunk.subarray(0, slice) : chunk);
    if (this.closed) return;
    if (this.#readPublishes !== 0 && this.#throttle()) return;
    if (this.#rest !== null) setImmediate(this.#feedSlice);
    else this.stream.resume();
  };

  #feed(chunk: Buffer): void {
    try {
      this.#framer.push(chunk, this.#onPacket);
    } catch (err) {
      this.#fail(err);
    }
  }

  /**
   * After a read with PUBLISH packets: a client over `limits.max_publish_rate`
   * or `max_publish_bytes_rate` is slowed by not reading its socket until its
   * buckets refill (one timer while paused), and disconnected (v5 0x96) if it
   * stays over for `rate_limit_disconnect_after_ms`. True when reading stopped.
   */
  #throttle(): boolean {
    const packets = this.#readPublishes;
    const bytes = this.#readPublishBytes;
    this.#readPublishes = 0;
    this.#readPublishBytes = 0;
    const limits = this.host.config.limits;
    if (this.#rate === null) {
      if (limits.maxPublishRate === 0 && limits.maxPublishBytesRate === 0) return false;
      this.#rate = new PublishRate(Date.now());
    }
    const verdict = this.#rate.take(packets, bytes, limits, Date.now());
    this.#slice = this.#rate.over ? THROTTLED_SLICE : READ_SLICE;
    return this.#rateVerdict(verdict);
  }

  /** Act on a PublishRate answer: go on, pause reading for that long, or disconnect. */
  #rateVerdict(verdict: number): boolean {
    if (verdict === RATE_OK) return false;
    if (verdict === RATE_DISCONNECT) {
      this.#fail(ternError('ERR_MQTT_MESSAGE_RATE_TOO_HIGH', 'publish rate over the limit for too long'));
      return true;
    }
    this.stream.pause();
    this.#rateTimer = setTimeout(this.#unthrottle, verdict);
    return true;
  }

  readonly #unthrottle = (): void => {
    this.#rateTimer = undefined;
    if (this.closed || this.#rate === null || this.#quiesced) return;
    if (this.#rateVerdict(this.#rate.wait(this.host.config.limits, Date.now()))) return;
    // Go on where the pause began: the rest of a sliced read, or the socket.
    if (this.#rest !== null) this.#feedSlice();
    else this.stream.resume();
  };

  #handleFrame(header: number, body: Buffer): void {
    if (this.closed) return;
    const awaiting = this.#phase === Phase.AwaitingConnect;
    if (awaiting && header >> 4 !== PacketType.CONNECT) {
      // [MQTT-3.1.0-1] the first packet must be CONNECT.
      throw ternError('ERR_MQTT_PROTOCOL', 'first packet was not CONNECT');
    }
    if (awaiting && body.length >= 3) {
      // The protocol level byte follows the protocol name: kept so a refusal can
      // answer in the client's own CONNACK format (v5 0x84, 3.1.1 0x01).
      const level = body[2 + body.readUInt16BE(0)];
      if (level !== undefined) this.requestedLevel = level;
    }
    if (header >> 4 === PacketType.PUBLISH) {
      this.#readPublishes++;
      this.#readPublishBytes += wireBytes(body.length);
    }
    const packet = decodePacket(header, body, this.level);
    if (this.pending !== null) {
      // During an enhanced-authentication exchange, AUTH answers go to the waiting step.
      if (packet.type === 'auth' && this.authWaiter !== null) {
        const waiter = this.authWaiter;
        this.authWaiter = null;
        waiter(packet);
        return;
      }
      this.pending.push(packet);
      return;
    }
    this.#dispatch(packet);
  }

  #dispatch(packet: Packet): void {
    try {
      this.host.onPacket(this, packet);
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (err instanceof TernError) {
      this.host.onProtocolError(this, err);
      return;
    }
    // A bug in packet handling closes this client, never the process.
    this.host.onProtocolError(
      this,
      ternError('ERR_MQTT_PROTOCOL', `internal error: ${(err as Error)?.message ?? String(err)}`, { cause: err }),
    );
  }

  // ---- timers ----

  #armKeepalive(limitMs: number): void {
    const due = this.lastActivity + limitMs - Date.now();
    this.#keepaliveTimer = setTimeout(() => this.#checkKeepalive(limitMs), due > 0 ? due : 0);
  }

  #checkKeepalive(limitMs: number): void {
    if (this.closed) return;
    if (Date.now() - this.lastActivity >= limitMs) {
      // A client whose reading is paused (publish rate, shutdown) is not idle: its bytes are waiting.
      if (this.#rateTimer !== undefined || this.#quiesced) {
        this.lastActivity = Date.now();
      } else {
        // [MQTT-3.1.2-24] nothing for 1.5 x keep-alive: disconnect.
        this.disconnect(ReasonCode.KEEP_ALIVE_TIMEOUT, 'keep-alive timeout');
        return;
      }
    }
    this.#armKeepalive(limitMs);
  }

  #connectTimeout(): void {
    if (this.#phase === Phase.AwaitingConnect || this.#phase === Phase.Connecting) {
      this.destroy('no CONNECT within the connect timeout');
    }
  }

  #drained(): void {
    if (this.#drainTimer !== undefined) {
      clearTimeout(this.#drainTimer);
      this.#drainTimer = undefined;
    }
    this.session?.pump();
  }

  #stopTimers(): void {
    clearTimeout(this.#keepaliveTimer);
    clearTimeout(this.#drainTimer);
    clearTimeout(this.#rateTimer);
    this.#keepaliveTimer = undefined;
    this.#drainTimer = undefined;
    this.#rateTimer = undefined;
  }

  #closed(): void {
    if (this.#phase === Phase.Closed) return;
    this.#phase = Phase.Closed;
    this.#stopTimers();
    this.host.onClosed(this);
  }
}

function uncork(conn: Connection): void {
  conn.flush();
}
