/**
 * Messages between nodes: one Redis stream per receiving node
 * (`P cluster:fwd:<node>`). A publishing node batches what each other node
 * must get during one tick into one stream entry (one XADD per node per
 * tick, however many messages), so the Redis cost follows the number of
 * nodes with subscribers, not the number of deliveries; a node without
 * matching subscribers gets nothing.
 *
 * Streams, not pub/sub, because a QoS 1/2 publisher is acknowledged once its
 * message is in every receiving node's stream: if a receiver dies before it
 * routed the entry, the entry is still there for the node that adopts its
 * sessions (see cluster.ts). A receiver reads its stream with XREAD BLOCK,
 * routes each batch, waits until what the batch queued for persistent
 * sessions is stored, then records its position (`P cluster:fwd-pos:<node>`)
 * and trims the stream up to it. A restart resumes after that position.
 *
 * Entry format (field `b`): `[u32 count]` then per message
 * `[u32 meta length][meta JSON][u32 blob length][message blob]`, where the
 * blob is the store's message encoding (redis-codec.ts) and the meta is
 * `[origin | null, normal 0|1, shared groups[]]`: `normal` asks the receiver
 * to deliver to its non-shared subscribers, `groups` names the shared groups
 * (`$share/g/f`) this node was picked to serve for this message.
 */
import type { Redis } from 'ioredis';
import { decodeMessage, encodeMessage } from '../persistence/redis-codec.js';
import type { StoredMessage } from '../persistence/types.js';
import { TickFlush } from './tick-flush.js';

export interface Forwarded {
  message: StoredMessage;
  origin: string | undefined;
  normal: boolean;
  groups: string[];
}

type Meta = [string | null, 0 | 1, string[]];

/** Longest stream kept per node (approximate trim): a node gone for good cannot fill Redis. */
const MAX_STREAM_ENTRIES = 100_000;
/** Batches read ahead of their position commit. */
const MAX_UNCOMMITTED = 8;

export function encodeBatch(items: readonly Forwarded[]): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(items.length, 0);
  parts.push(count);
  for (const f of items) {
    const meta = Buffer.from(JSON.stringify([f.origin ?? null, f.normal ? 1 : 0, f.groups] satisfies Meta));
    const blob = encodeMessage(f.message);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(meta.length, 0);
    const mid = Buffer.allocUnsafe(4);
    mid.writeUInt32BE(blob.length, 0);
    parts.push(head, meta, mid, blob);
  }
  return Buffer.concat(parts);
}

export function decodeBatch(buf: Buffer): Forwarded[] {
  const out: Forwarded[] = [];
  const count = buf.readUInt32BE(0);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const metaLen = buf.readUInt32BE(at);
    at += 4;
    const meta = JSON.parse(buf.toString('utf8', at, at + metaLen)) as Meta;
    at += metaLen;
    const blobLen = buf.readUInt32BE(at);
    at += 4;
    const message = decodeMessage(buf.subarray(at, at + blobLen));
    at += blobLen;
    out.push({ message, origin: meta[0] ?? undefined, normal: meta[1] === 1, groups: meta[2] });
  }
  return out;
}

export class Forwarder {
  readonly #redis: Redis;
  readonly #prefix: string;
  #pending = new Map<string, Forwarded[]>();
  readonly #flushing = new TickFlush(() => this.#flush(), (err) => this.onError(err));
  /** A batch nobody waits for failed (QoS 0 only): its messages are lost, as QoS 0 may be. */
  onError: (err: unknown) => void = () => {};
  /** Messages and batches sent, for metrics and the benchmark. */
  readonly stats = { messagesOut: 0, batchesOut: 0, messagesIn: 0, batchesIn: 0 };

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
  }

  streamKey(node: string): string {
    return `${this.#prefix}cluster:fwd:${node}`;
  }

  positionKey(node: string): string {
    return `${this.#prefix}cluster:fwd-pos:${node}`;
  }

  /** Queue a message for `node`; it leaves with this tick's batch. */
  send(node: string, item: Forwarded): void {
    let list = this.#pending.get(node);
    if (list === undefined) this.#pending.set(node, (list = []));
    list.push(item);
    this.stats.messagesOut++;
    // QoS 1/2 publishers waiting on it are refused on failure; QoS 0 traffic has no one waiting.
    this.#flushing.request();
  }

  /** The promise of the batch carrying what was sent so far, or undefined when nothing waits. */
  pendingFlush(): Promise<void> | undefined {
    return this.#flushing.pending;
  }

  async #flush(): Promise<void> {
    const pending = this.#pending;
    this.#pending = new Map();
    const pipeline = this.#redis.pipeline();
    for (const [node, items] of pending) {
      pipeline.xadd(this.streamKey(node), 'MAXLEN', '~', MAX_STREAM_ENTRIES, '*', 'b', encodeBatch(items));
      this.stats.batchesOut++;
    }
    const replies = (await pipeline.exec()) ?? [];
    for (const [err] of replies) if (err) throw err;
  }

  /** Where this node's reading resumes ('0-0' when it never read). */
  async position(node: string): Promise<string> {
    return (await this.#redis.get(this.positionKey(node))) ?? '0-0';
  }

  /** Record that everything up to `id` was routed and stored, and trim the stream to it. */
  async commit(node: string, id: string): Promise<void> {
    await this.#redis.multi().set(this.positionKey(node), id).xtrim(this.streamKey(node), 'MINID', id).exec();
  }

  /** Entries of `node`'s stream after `from`, up to `count` (no blocking: for draining a dead node's stream). */
  async range(node: string, from: string, count: number): Promise<Array<[string, Forwarded[]]>> {
    const entries = await this.#redis.xrangeBuffer(this.streamKey(node), `(${from}`, '+', 'COUNT', count);
    return entries.map(([id, fields]) => [id.toString(), decodeEntry(fields)]);
  }

  /** Forget a node's stream and position (after its entries were drained). */
  async drop(node: string): Promise<void> {
    await this.#redis.del(this.streamKey(node), this.positionKey(node));
  }

  /**
   * Read `node`'s stream from `from` with a blocking connection until
   * `stopped()`. Each batch of entries goes to `handle`, which routes them
   * at once (in order) and resolves once what they queued is stored; the
   * position is committed after that, in order. Reading goes on meanwhile,
   * with at most MAX_UNCOMMITTED batches waiting for their commit.
   */
  async readLoop(
    reader: Redis,
    node: string,
    from: string,
    handle: (items: Forwarded[]) => Promise<void>,
    stopped: () => boolean,
    onError: (err: unknown) => void,
  ): Promise<void> {
    let last = from;
    const key = this.streamKey(node);
    let tail: Promise<void> = Promise.resolve();
    let uncommitted = 0;
    while (!stopped()) {
      if (uncommitted >= MAX_UNCOMMITTED) await tail;
      let reply: Array<[Buffer, Array<[Buffer, Buffer[]]>]> | null;
      try {
        reply = (await reader.xreadBuffer('COUNT', 256, 'BLOCK', 1000, 'STREAMS', key, last)) as typeof reply;
      } catch (err) {
        if (stopped()) break;
        onError(err);
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (reply === null || reply.length === 0) continue;
      const entries = reply[0]![1];
      const items: Forwarded[] = [];
      for (const [, fields] of entries) {
        const batch = decodeEntry(fields);
        this.stats.batchesIn++;
        this.stats.messagesIn += batch.length;
        for (const f of batch) items.push(f);
      }
      const lastId = entries[entries.length - 1]![0].toString();
      last = lastId;
      const stored = handle(items);
      uncommitted++;
      // Not committed on failure: a restart reads these entries again (at least once).
      tail = tail
        .then(() => stored)
        .then(() => this.commit(node, lastId))
        .catch(onError)
        .finally(() => {
          uncommitted--;
        });
    }
    await tail;
  }
}

function decodeEntry(fields: Buffer[]): Forwarded[] {
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i]!.toString() === 'b') return decodeBatch(fields[i + 1]!);
  }
  return [];
}
