/**
 * The one ordered pipeline from the local side to the remote.
 *
 * Every forwarded message gets the next `seq` at ingest. QoS 1/2 messages
 * (and QoS 0 with cache_qos0) join a group-commit batch that is written to
 * the cache at the end of the event-loop turn (or after commit_interval_ms);
 * only after that commit, or after the remote's acknowledgement, whichever
 * is first, is the message acknowledged to the local broker (the ack chain).
 *
 * The sender hands messages to the remote client strictly in seq order, at
 * most `window` unacknowledged (in-flight window, capped by the remote's
 * Receive Maximum). The next message comes from memory (the newest entries,
 * SeqRing) when it is there, else from the cache in batches of batch_size
 * rows. So a live message never overtakes the backlog: while one exists, the
 * live message is just the tail of it; and after a restart, the cached rows
 * (lower seqs) go before anything the local broker redelivers.
 *
 * A row is deleted only after the remote acknowledged it (PUBACK/PUBCOMP):
 * acknowledgements advance a frontier (every seq at or below it is done) and
 * the rows up to it are deleted with the next commit. After a crash, rows
 * above the frontier are sent again: duplicates per fault are bounded by the
 * window.
 */
import type { MqttClient } from '../client/client.js';
import { Fifo } from '../client/fifo.js';
import type { Properties, QoS } from '../codec/types.js';
import { isTernError } from '../errors.js';
import { propertiesFromJson, propertiesToJson } from '../persistence/records.js';
import { isCorruption, type BridgeCache, type CacheLimits } from './cache.js';
import { Entry, Flag } from './entry.js';
import type { LocalSide } from './local-side.js';
import { SeqRing } from './ring.js';

export const DROP_REASONS = [
  'evicted',
  'rejected',
  'expired',
  'too_large',
  'qos0_offline',
  'remote_rejected',
  'local_down',
  'corrupt',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface PipelineOptions {
  limits: CacheLimits;
  maxMessageBytes: number;
  batchSize: number;
  replayIntervalMs: number;
  commitIntervalMs: number;
  cacheQos0: boolean;
  /** Time to live of cached messages, ms; 0 = none. */
  ttlMs: number;
  window: number;
}

export interface PipelineHost {
  readonly local: LocalSide;
  dropped(reason: DropReason, count: number): void;
  drained(): void;
  /** The cache file was found corrupt while running and moved to `movedTo`; `lost` rows (only in the file) are gone. */
  cacheReset(file: string, movedTo: string, lost: number, estimated: boolean): void;
  error(err: Error): void;
}

const DONE = Flag.ACKED | Flag.DROPPED;
/** Entries held in memory beyond the backlog read from the cache. */
const MEM_MAX = 8192;
const MEM_MAX_BYTES = 16 * 1024 * 1024;
/** Delete-only commits wait this long to gather acknowledgements. */
const DELETE_DELAY_MS = 20;
/** A drain after a backlog of at least this many rows returns the freed space to the file system. */
const VACUUM_MIN_ROWS = 10_000;
/** A fresh cache found corrupt again this soon is not replaced again (a failing disk): errors and retries instead. */
const RESET_MIN_INTERVAL_MS = 10_000;

export class Pipeline {
  readonly #cache: BridgeCache;
  readonly #o: PipelineOptions;
  readonly #host: PipelineHost;
  #client: MqttClient | null = null;
  #nextSeq: number;
  /** Highest seq handed to the remote client or skipped. */
  #cursor: number;
  /** Every seq at or below it is acknowledged or dropped. */
  #frontier: number;
  /** Rows at or below it are deleted. */
  #deletedUpTo: number;
  /** Rows at or below it were evicted (drop_oldest). */
  #evictedUpTo = 0;
  readonly #mem: SeqRing;
  #replayBuf: Entry[] = [];
  #replayIdx = 0;
  #lastLoad = 0;
  readonly #inflight = new Fifo<Entry>();
  #batch: Entry[] = [];
  #flushTimer: NodeJS.Timeout | undefined = undefined;
  #flushImmediate: NodeJS.Immediate | undefined = undefined;
  #pumpScheduled = false;
  #pumpTimer: NodeJS.Timeout | undefined = undefined;
  #vacuuming = false;
  /** Largest backlog since the last drain. */
  #peak = 0;
  /** When the cache was last replaced after corruption. */
  #resetAt = 0;
  #closed = false;
  // counters
  received = 0;
  acked = 0;
  lastAckAt = 0;
  readonly #pumpTick = (): void => {
    this.#pumpScheduled = false;
    this.#pump();
  };
  readonly #flushNow = (): void => {
    this.#flushImmediate = undefined;
    this.#flushTimer = undefined;
    this.flush();
  };

  constructor(cache: BridgeCache, options: PipelineOptions, host: PipelineHost) {
    this.#cache = cache;
    this.#o = options;
    this.#host = host;
    this.#nextSeq = cache.lastSeq + 1;
    const start = cache.count > 0 ? cache.firstSeq - 1 : cache.lastSeq;
    this.#cursor = start;
    this.#frontier = start;
    this.#deletedUpTo = start;
    this.#mem = new SeqRing(this.#nextSeq);
    this.#peak = cache.count;
  }

  get inflight(): number {
    return this.#inflight.length;
  }

  /** Messages not yet acknowledged by the remote (cached rows + pending commits). */
  get backlog(): number {
    return this.#cache.count + this.#batch.length;
  }

  // ---- remote ----

  /** The remote is connected (first connect or reconnect of `client`). */
  remoteUp(client: MqttClient): void {
    this.#client = client;
    this.#schedulePump();
  }

  remoteDown(): void {
    // The client keeps its in-flight messages and resends them on reconnect.
  }

  // ---- ingest ----

  ingest(topic: string, payload: Buffer, qos: QoS, retain: boolean, properties: Properties | undefined, token: number, epoch: number): void {
    if (this.#closed) return;
    this.received++;
    const o = this.#o;
    const host = this.#host;
    const remoteUp = this.#client !== null && this.#client.connected;
    let flags = 0;
    if (qos > 0 || o.cacheQos0) flags = Flag.ROW;
    else if (!remoteUp) {
      host.dropped('qos0_offline', 1);
      return;
    }
    if (token !== 0) flags |= Flag.LOCAL_ACK;
    let expiresAt = 0;
    let props: string | null = null;
    let fwd: Properties | undefined = undefined;
    if (properties !== undefined) {
      fwd = forwardable(properties);
      const expiry = properties.messageExpiryInterval;
      if (expiry !== undefined) expiresAt = Date.now() + expiry * 1000;
      if (fwd !== undefined && (flags & Flag.ROW) !== 0) props = propertiesToJson(fwd);
    }
    if (o.ttlMs > 0 && (flags & Flag.ROW) !== 0) {
      const ttl = Date.now() + o.ttlMs;
      if (expiresAt === 0 || ttl < expiresAt) expiresAt = ttl;
    }
    const e = new Entry(this.#nextSeq, topic, payload, qos, retain, props, fwd, expiresAt, flags, token, epoch);
    if (e.size > o.maxMessageBytes || (o.limits.maxBytes > 0 && e.size > o.limits.maxBytes)) {
      host.dropped('too_large', 1);
      if (token !== 0) host.local.ack(token, epoch);
      return;
    }
    this.#nextSeq++;
    this.#mem.push(e);
    if (this.#mem.size > MEM_MAX || this.#mem.bytes > MEM_MAX_BYTES) this.#trimMem();
    if ((flags & Flag.ROW) !== 0) {
      e.flags |= Flag.IN_BATCH;
      this.#batch.push(e);
      if (this.#batch.length >= o.batchSize) this.flush();
      else this.#scheduleFlush();
    }
    if (remoteUp) this.#schedulePump();
  }

  #trimMem(): void {
    const mem = this.#mem;
    while (mem.size > MEM_MAX || mem.bytes > MEM_MAX_BYTES) {
      const head = mem.peek()!;
      const f = head.flags;
      // An uncommitted row that still matters can only be sent from memory.
      if ((f & Flag.ROW) !== 0 && (f & Flag.COMMITTED) === 0 && (f & DONE) === 0) return;
      if ((f & Flag.ROW) === 0 && (f & (Flag.SENT | DONE)) === 0) {
        head.flags |= Flag.DROPPED;
        this.#host.dropped('qos0_offline', 1);
      }
      mem.shift();
    }
  }

  #scheduleFlush(): void {
    if (this.#flushImmediate !== undefined || this.#flushTimer !== undefined) {
      // A pending delete-only timer is overtaken by a batch that should commit now.
      if (this.#flushTimer === undefined || this.#o.commitIntervalMs > 0) return;
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    if (this.#o.commitIntervalMs > 0) this.#flushTimer = setTimeout(this.#flushNow, this.#o.commitIntervalMs);
    else this.#flushImmediate = setImmediate(this.#flushNow);
  }

  #scheduleDelete(): void {
    if (this.#flushImmediate !== undefined || this.#flushTimer !== undefined || this.#closed) return;
    this.#flushTimer = setTimeout(this.#flushNow, DELETE_DELAY_MS);
  }

  /** Group commit: insert the batch, delete acknowledged rows, then acknowledge locally. */
  flush(): void {
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    clearTimeout(this.#flushTimer);
    this.#flushImmediate = undefined;
    this.#flushTimer = undefined;
    const batch = this.#batch;
    const ackedUpTo = this.#frontier;
    if (batch.length === 0 && ackedUpTo <= this.#deletedUpTo) return;
    this.#batch = [];
    const rows: Entry[] = [];
    for (const e of batch) if ((e.flags & DONE) === 0) rows.push(e);
    const cache = this.#cache;
    const before = cache.count;
    let result;
    try {
      result = cache.commit(rows, this.#deletedUpTo, ackedUpTo, this.#o.limits);
    } catch (err) {
      // Not a full disk (that is handled as a full cache): keep the batch for the next try.
      this.#batch = batch.concat(this.#batch);
      // A corrupt file is replaced by a fresh one, and the batch (with what memory holds) committed there at once.
      if (this.#recover(err)) return this.flush();
      this.#host.error(err as Error);
      this.#flushTimer = setTimeout(this.#flushNow, 1000);
      return;
    }
    if (ackedUpTo > this.#deletedUpTo) this.#deletedUpTo = ackedUpTo;
    if (result.evicted > 0) {
      this.#host.dropped('evicted', result.evicted);
      if (result.evictedUpTo > this.#evictedUpTo) this.#evictedUpTo = result.evictedUpTo;
      if (result.evictedUpTo > this.#deletedUpTo) this.#deletedUpTo = result.evictedUpTo;
    }
    for (let i = 0; i < rows.length; i++) {
      const e = rows[i]!;
      if (i < result.batchEvicted) this.#notStored(e, 'evicted');
      else if (i >= result.rejectedFrom) this.#notStored(e, 'rejected');
      else e.flags |= Flag.COMMITTED;
    }
    const local = this.#host.local;
    for (const e of batch) {
      e.flags &= ~Flag.IN_BATCH;
      if ((e.flags & Flag.LOCAL_ACK) !== 0 && (e.flags & (Flag.COMMITTED | DONE)) !== 0) {
        e.flags &= ~Flag.LOCAL_ACK;
        local.ack(e.localToken, e.localEpoch);
      }
    }
    const count = cache.count;
    if (count > this.#peak) this.#peak = count;
    if (count <= this.#o.window && before > 0 && this.#peak > this.#o.window) {
      // The backlog is gone: what is left (if anything) is live traffic in flight.
      const peak = this.#peak;
      this.#peak = 0;
      this.#host.drained();
      if (peak >= VACUUM_MIN_ROWS) this.#startVacuum();
    }
  }

  /** A row the cache did not take: dropped, unless it is already on its way (then the remote's ack settles it). */
  #notStored(e: Entry, reason: DropReason): void {
    if ((e.flags & Flag.SENT) !== 0 && (e.flags & DONE) === 0) return;
    if ((e.flags & DONE) !== 0) return;
    e.flags |= Flag.DROPPED;
    this.#host.dropped(reason, 1);
  }

  #startVacuum(): void {
    if (this.#vacuuming) return;
    this.#vacuuming = true;
    const step = (): void => {
      if (this.#closed) {
        this.#vacuuming = false;
        return;
      }
      let more = false;
      try {
        more = this.#cache.vacuumStep();
      } catch (err) {
        if (this.#recover(err)) this.flush();
        else this.#host.error(err as Error);
      }
      if (more) setImmediate(step);
      else this.#vacuuming = false;
    };
    setImmediate(step);
  }

  // ---- sending ----

  #schedulePump(): void {
    if (this.#pumpScheduled || this.#closed) return;
    this.#pumpScheduled = true;
    process.nextTick(this.#pumpTick);
  }

  #pump(): void {
    const client = this.#client;
    if (client === null || !client.connected || this.#closed) return;
    const limit = this.#o.window < client.inflightLimit ? this.#o.window : client.inflightLimit;
    const inflight = this.#inflight;
    this.#advance();
    let now = 0;
    while (inflight.length < limit) {
      const e = this.#next();
      if (e === undefined) break;
      this.#cursor = e.seq;
      const f = e.flags;
      if ((f & DONE) !== 0) continue;
      if ((f & Flag.ROW) !== 0 && e.seq <= this.#evictedUpTo && (f & Flag.IN_BATCH) === 0 && (f & Flag.COMMITTED) !== 0) continue;
      if (e.expiresAt !== 0) {
        if (now === 0) now = Date.now();
        if (now >= e.expiresAt) {
          this.#drop(e, 'expired');
          continue;
        }
      }
      this.#send(client, e, now);
      if (!client.connected) break;
    }
    this.#advance();
  }

  /** The entry after the cursor: from memory, or a batch read from the cache. */
  #next(): Entry | undefined {
    const s = this.#cursor + 1;
    if (s >= this.#nextSeq) return undefined;
    const mem = this.#mem;
    if (s >= mem.loSeq) {
      if (this.#replayBuf.length > 0) {
        this.#replayBuf = [];
        this.#replayIdx = 0;
      }
      return mem.get(s);
    }
    if (this.#replayIdx < this.#replayBuf.length) return this.#replayBuf[this.#replayIdx++];
    const o = this.#o;
    if (o.replayIntervalMs > 0) {
      const wait = this.#lastLoad + o.replayIntervalMs - Date.now();
      if (wait > 0) {
        if (this.#pumpTimer === undefined) {
          this.#pumpTimer = setTimeout(() => {
            this.#pumpTimer = undefined;
            this.#pump();
          }, wait);
        }
        return undefined;
      }
      this.#lastLoad = Date.now();
    }
    let rows: Entry[];
    try {
      rows = this.#cache.read(this.#cursor, mem.loSeq, o.batchSize);
    } catch (err) {
      if (this.#recover(err)) {
        this.flush();
        this.#schedulePump();
      } else {
        this.#host.error(err as Error);
      }
      return undefined;
    }
    if (rows.length === 0) {
      // Nothing cached below the memory window: continue there.
      this.#cursor = mem.loSeq - 1;
      return mem.loSeq < this.#nextSeq ? mem.get(mem.loSeq) : undefined;
    }
    this.#replayBuf = rows;
    this.#replayIdx = 1;
    return rows[0];
  }

  #send(client: MqttClient, e: Entry, now: number): void {
    e.flags |= Flag.SENT;
    let props = e.properties;
    if (props === undefined && e.props !== null) props = e.properties = propertiesFromJson(e.props);
    if (props !== undefined && props.messageExpiryInterval !== undefined && e.expiresAt !== 0) {
      // [MQTT-3.3.2-6] forward the time left, not the original interval.
      const left = Math.max(1, Math.ceil((e.expiresAt - (now || Date.now())) / 1000));
      if (left !== props.messageExpiryInterval) props = e.properties = { ...props, messageExpiryInterval: left };
    }
    // One closure per message that goes out: the ack must name its message (acks may come out of order).
    const cb = (e.onAck ??= (err: Error | null): void => this.#onAck(e, err));
    if (e.qos > 0) this.#inflight.push(e);
    client.publishWithCallback(e.topic, e.payload, e.qos, e.retain, props, cb);
  }

  #onAck(e: Entry, err: Error | null): void {
    if (err !== null) {
      // Closing, or the link dropped for good: the row stays for the next run.
      if (isTernError(err, 'ERR_CLIENT_CLOSED') || isTernError(err, 'ERR_CLIENT_CONNECTION_LOST')) {
        e.flags &= ~Flag.SENT;
        return;
      }
      this.#drop(e, isTernError(err, 'ERR_MQTT_PACKET_TOO_LARGE') ? 'too_large' : 'remote_rejected');
    } else {
      e.flags |= Flag.ACKED;
      this.acked++;
      this.lastAckAt = Date.now();
      if ((e.flags & (Flag.LOCAL_ACK | Flag.IN_BATCH)) === Flag.LOCAL_ACK) {
        // Acknowledged by the remote before (or instead of) being cached.
        e.flags &= ~Flag.LOCAL_ACK;
        this.#host.local.ack(e.localToken, e.localEpoch);
      }
    }
    this.#schedulePump();
  }

  #drop(e: Entry, reason: DropReason): void {
    e.flags |= Flag.DROPPED;
    this.#host.dropped(reason, 1);
    if ((e.flags & (Flag.LOCAL_ACK | Flag.IN_BATCH)) === Flag.LOCAL_ACK) {
      e.flags &= ~Flag.LOCAL_ACK;
      this.#host.local.ack(e.localToken, e.localEpoch);
    }
  }

  /**
   * The cache file turned out corrupt while running (not at open): move it
   * aside and start a fresh one (BridgeCache.reset). Entries memory still
   * holds whose rows were in the file (the newest entries, a replay batch,
   * messages in flight) go into the next commit, so they stay cached; rows
   * only the file held are lost and counted as dropped (`corrupt`): exactly
   * when the damaged file can still count them, else an upper bound (it may
   * include acknowledged rows whose delete was pending). Returns false when
   * `err` is not corruption, or the cache was replaced moments ago.
   */
  #recover(err: unknown): boolean {
    if (!isCorruption(err) || this.#closed) return false;
    const now = Date.now();
    if (now - this.#resetAt < RESET_MIN_INTERVAL_MS) return false;
    this.#resetAt = now;
    const cache = this.#cache;
    const keep = new Set<Entry>();
    const take = (e: Entry | undefined): void => {
      if (e !== undefined && (e.flags & (Flag.ROW | Flag.COMMITTED | DONE)) === (Flag.ROW | Flag.COMMITTED)) keep.add(e);
    };
    const inflight = this.#inflight.drain();
    for (const e of inflight) {
      take(e);
      this.#inflight.push(e);
    }
    const buf = this.#replayBuf;
    for (let i = this.#replayIdx; i < buf.length; i++) take(buf[i]);
    const mem = this.#mem;
    for (let seq = mem.loSeq, end = mem.loSeq + mem.size; seq < end; seq++) take(mem.get(seq));
    // Rows above the cursor and below memory, not in the replay batch, were only in the file.
    const between = cache.tryCount(this.#cursor, mem.loSeq);
    const estimated = between === null;
    const lost = estimated ? Math.max(0, cache.count - keep.size) : Math.max(0, between - (buf.length - this.#replayIdx));
    let movedTo: string;
    try {
      movedTo = cache.reset(this.#nextSeq - 1);
    } catch (resetErr) {
      this.#host.error(resetErr as Error);
      return false;
    }
    if (keep.size > 0) {
      for (const e of keep) {
        e.flags = (e.flags & ~Flag.COMMITTED) | Flag.IN_BATCH;
        this.#batch.push(e);
      }
      this.#batch.sort((a, b) => a.seq - b.seq);
    }
    if (lost > 0) this.#host.dropped('corrupt', lost);
    this.#host.cacheReset(cache.file, movedTo, lost, estimated);
    return true;
  }

  /** Move the frontier past settled messages; schedule the delete of their rows. */
  #advance(): void {
    const inflight = this.#inflight;
    for (let head = inflight.peek(); head !== undefined && (head.flags & DONE) !== 0; head = inflight.peek()) {
      head.onAck = null;
      inflight.shift();
    }
    const head = inflight.peek();
    const frontier = head === undefined ? this.#cursor : head.seq - 1;
    if (frontier > this.#frontier) {
      this.#frontier = frontier;
      if (this.#batch.length === 0) this.#scheduleDelete();
    }
  }

  /** Stop sending; commit what is pending (the caller then closes the cache). */
  close(): void {
    this.flush();
    this.#closed = true;
    clearTimeout(this.#pumpTimer);
    clearTimeout(this.#flushTimer);
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    this.#flushTimer = undefined;
    this.#flushImmediate = undefined;
  }

  /** Stop taking messages and sending; pending commits still go through flush(). */
  pause(): void {
    this.#closed = true;
    clearTimeout(this.#pumpTimer);
  }

  /** Final commit after pause() (deletes for acks that came in while closing). */
  finish(): void {
    this.#advance();
    this.flush();
    clearTimeout(this.#flushTimer);
    if (this.#flushImmediate !== undefined) clearImmediate(this.#flushImmediate);
    this.#flushTimer = undefined;
    this.#flushImmediate = undefined;
  }
}

/** v5 properties worth forwarding: topic alias and subscription identifiers are per connection. */
function forwardable(p: Properties): Properties | undefined {
  if (p.topicAlias === undefined && p.subscriptionIdentifiers === undefined) {
    return Object.keys(p).length === 0 ? undefined : p;
  }
  const out: Properties = { ...p };
  delete out.topicAlias;
  delete out.subscriptionIdentifiers;
  return Object.keys(out).length === 0 ? undefined : out;
}
