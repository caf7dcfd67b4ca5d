/**
 * RedisPersistence: storage in Redis (>= 2.8.9; tested on 7), shared state
 * for brokers that scale out. Every commit() is one Lua script (redis-scripts.ts),
 * so it is applied atomically and in order; the script validates all ops
 * before it writes any, because Redis does not roll a failed script back.
 *
 * Key layout (P = the configured prefix, default `tern:`; several brokers or
 * tests share one Redis by using different prefixes):
 *
 *   P meta              hash    last-message-id, retained-bytes, format (= FORMAT)
 *   P sessions          hash    clientId -> session JSON
 *   P session-index     zset    clientId, score 0: paged in byte order (ZRANGEBYLEX)
 *   P session-expiry    zset    clientId by expiry time (ms), disconnected expiring sessions only
 *   P sub:<clientId>    hash    filter -> subscription JSON
 *   P out:<clientId>    hash    seq -> `<messageId>|<state>|<json>` (ordered by seq on load)
 *   P in:<clientId>     set     QoS 2 packet ids awaiting PUBREL
 *   P messages          hash    id -> message blob (redis-codec.ts)
 *   P message-refs      hash    id -> outbound entries + retained slots referencing it
 *   P message-expiry    hash    id -> expiresAt (ms), messages that have one
 *   P outbound-expiry   zset    `<clientId>\n<seq>` by its message's expiresAt, queued entries
 *   P retained          hash    topic -> `<messageId>|<payload bytes>`
 *   P retained-index    zset    topic, score 0: wildcard lookups scan only the
 *                               literal prefix before the first wildcard (ZRANGEBYLEX)
 *   P retained-expiry   zset    topic by its message's expiresAt
 *
 * The expiry sets are indexes, rechecked on purge: members left behind by
 * later writes (an entry sent or deleted, a slot replaced) are dropped then.
 * Messages are collected at the end of the commit that drops their last
 * reference (the script tracks candidates; no sweep).
 *
 * A Redis Cluster must hold every key in one slot: use a prefix with a hash
 * tag, e.g. `{tern}:`. Scripts name `P meta` as their key so they are routed
 * to that slot.
 *
 * Durability is Redis's (AOF/RDB settings): a resolved commit is in Redis
 * memory. While Redis is unreachable, commit() and purgeExpired() reject at
 * once with ERR_STORAGE_WRITE and reads with ERR_STORAGE_OPEN (no offline
 * queue, so nothing is applied late behind the broker's back); the client
 * reconnects in the background. A command cut off by a lost connection is not
 * resent; it may or may not have been applied.
 *
 * Loaders page through the indexes by key (PAGE_SIZE at a time, each page one
 * script), so they never hold everything in memory and tolerate commits made
 * while they iterate.
 */
import type { Redis } from 'ioredis';
import { createRedis } from './redis-connect.js';
import { topicMatches } from '../broker/topic.js';
import { isTernError, ternError, type ErrorCode } from '../errors.js';
import type { Persistence, RetainedLimits, StorageOp } from './persistence.js';
import {
  decodeEntry,
  decodeMessage,
  decodeSession,
  decodeSubscription,
  encodeEntry,
  encodeMessage,
  encodeSession,
  encodeSubscription,
  literalPrefix,
} from './redis-codec.js';
import {
  COMMIT,
  GET_RETAINED,
  INVALID_OP,
  LOAD_OUTBOUND,
  OP,
  PURGE,
  RETAINED_LIMIT,
  RETAINED_PAGE,
  SESSIONS_PAGE,
  SUBSCRIPTIONS_PAGE,
} from './redis-scripts.js';
import { sessionExpiresAt } from './records.js';
import type {
  ClientSubscription,
  OutboundWithMessage,
  PurgeResult,
  RetainedStats,
  SessionRecord,
  StoredMessage,
  StoredSubscription,
} from './types.js';

export interface RedisPersistenceOptions extends RetainedLimits {
  /** `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** Prefix of every key; see the file comment. Default `tern:`. */
  prefix?: string;
  /** Longest wait for a connection, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** Longest wait for a reply before the command fails, ms. Default 10000. */
  commandTimeoutMs?: number;
}

/** Version of the key layout, kept in `P meta` `format`. */
export const FORMAT = 1;
const PAGE_SIZE = 512;
/** Expired items deleted per purge script run; longer purges take several runs. */
const PURGE_BATCH = 1000;

const OPEN_PAREN = Buffer.from('(');
const OPEN_BRACKET = Buffer.from('[');
const END_BYTE = Buffer.from([0xff]);

type Arg = string | Buffer | number;

/** The scripts, as defined on the client with defineCommand. */
interface Scripts {
  ternCommit(key: string, args: Arg[]): Promise<number>;
  ternPurge(key: string, args: Arg[]): Promise<Array<string | number>>;
  ternLoadOutboundBuffer(key: string, args: Arg[]): Promise<Buffer[]>;
  ternSessionsPage(key: string, args: Arg[]): Promise<string[]>;
  ternSubscriptionsPage(key: string, args: Arg[]): Promise<string[]>;
  ternRetainedPageBuffer(key: string, args: Arg[]): Promise<Buffer[]>;
  ternGetRetainedBuffer(key: string, args: Arg[]): Promise<Buffer | null>;
}

type Client = Redis & Scripts;

export class RedisPersistence implements Persistence {
  readonly #url: string;
  readonly #prefix: string;
  readonly #meta: string;
  readonly #sessions: string;
  readonly #retainedIndex: string;
  readonly #connectTimeoutMs: number;
  readonly #commandTimeoutMs: number;
  readonly #limits: [number, number];
  #redis: Client | null = null;
  /** The last connection error, for messages. */
  #lastError: Error | null = null;

  constructor(opts: RedisPersistenceOptions = {}) {
    this.#url = opts.url ?? 'redis://127.0.0.1:6379';
    this.#prefix = opts.prefix ?? 'tern:';
    this.#meta = `${this.#prefix}meta`;
    this.#sessions = `${this.#prefix}sessions`;
    this.#retainedIndex = `${this.#prefix}retained-index`;
    this.#connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
    this.#commandTimeoutMs = opts.commandTimeoutMs ?? 10_000;
    this.#limits = [opts.maxRetained ?? 0, opts.maxRetainedBytes ?? 0];
  }

  /** The key prefix. */
  get prefix(): string {
    return this.#prefix;
  }

  async open(): Promise<void> {
    if (this.#redis !== null) return;
    const redis = createRedis(this.#url, {
      lazyConnect: true,
      protocol: 2,
      connectTimeout: this.#connectTimeoutMs,
      commandTimeout: this.#commandTimeoutMs,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      retryStrategy: (times) => Math.min(times * 100, 2000),
      connectionName: 'tern-persistence',
    }) as Client;
    redis.on('error', (err: Error) => {
      this.#lastError = err;
    });
    redis.defineCommand('ternCommit', { numberOfKeys: 1, lua: COMMIT });
    redis.defineCommand('ternPurge', { numberOfKeys: 1, lua: PURGE });
    redis.defineCommand('ternLoadOutbound', { numberOfKeys: 1, lua: LOAD_OUTBOUND, readOnly: true });
    redis.defineCommand('ternSessionsPage', { numberOfKeys: 1, lua: SESSIONS_PAGE, readOnly: true });
    redis.defineCommand('ternSubscriptionsPage', { numberOfKeys: 1, lua: SUBSCRIPTIONS_PAGE, readOnly: true });
    redis.defineCommand('ternRetainedPage', { numberOfKeys: 1, lua: RETAINED_PAGE, readOnly: true });
    redis.defineCommand('ternGetRetained', { numberOfKeys: 1, lua: GET_RETAINED, readOnly: true });
    try {
      await redis.connect();
      await redis.hsetnx(this.#meta, 'format', FORMAT);
      const format = Number(await redis.hget(this.#meta, 'format'));
      if (format > FORMAT) {
        throw ternError(
          'ERR_STORAGE_OPEN',
          `${this.#where()} holds key layout version ${format}, newer than this Tern's ${FORMAT}`,
        );
      }
    } catch (err) {
      redis.disconnect();
      if (isTernError(err)) throw err;
      throw ternError('ERR_STORAGE_OPEN', `${this.#where()}: ${(err as Error).message}`, { cause: err });
    }
    this.#redis = redis;
  }

  async close(): Promise<void> {
    const redis = this.#redis;
    if (redis === null) return;
    this.#redis = null;
    try {
      await redis.quit();
    } catch {
      redis.disconnect();
    }
  }

  async commit(ops: readonly StorageOp[]): Promise<void> {
    const redis = this.#client();
    if (ops.length === 0) return;
    const args = this.#encode(ops);
    try {
      await redis.ternCommit(this.#meta, args);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_WRITE', 'commit');
    }
  }

  async lastMessageId(): Promise<number> {
    const redis = this.#client();
    try {
      return Number((await redis.hget(this.#meta, 'last-message-id')) ?? 0);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'lastMessageId');
    }
  }

  async *loadSessions(): AsyncIterable<SessionRecord> {
    let min: Arg = '-';
    for (;;) {
      const redis = this.#client();
      let page: string[];
      try {
        page = await redis.ternSessionsPage(this.#meta, [this.#prefix, min, PAGE_SIZE]);
      } catch (err) {
        throw this.#error(err, 'ERR_STORAGE_OPEN', 'loadSessions');
      }
      for (let i = 2; i < page.length; i++) yield decodeSession(page[i]!);
      if (Number(page[1]) < PAGE_SIZE) return;
      min = Buffer.concat([OPEN_PAREN, Buffer.from(page[0]!)]);
    }
  }

  async getSession(clientId: string): Promise<SessionRecord | undefined> {
    const redis = this.#client();
    let text: string | null;
    try {
      text = await redis.hget(this.#sessions, clientId);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'getSession');
    }
    return text === null ? undefined : decodeSession(text);
  }

  async *loadSubscriptions(): AsyncIterable<ClientSubscription> {
    let min: Arg = '-';
    for (;;) {
      const redis = this.#client();
      let page: string[];
      try {
        page = await redis.ternSubscriptionsPage(this.#meta, [this.#prefix, min, PAGE_SIZE]);
      } catch (err) {
        throw this.#error(err, 'ERR_STORAGE_OPEN', 'loadSubscriptions');
      }
      for (let i = 2; i < page.length; i += 3) {
        yield { clientId: page[i]!, subscription: decodeSubscription(page[i + 2]!) };
      }
      if (Number(page[1]) < PAGE_SIZE) return;
      min = Buffer.concat([OPEN_PAREN, Buffer.from(page[0]!)]);
    }
  }

  async getSubscriptions(clientId: string): Promise<StoredSubscription[]> {
    const redis = this.#client();
    let values: string[];
    try {
      values = await redis.hvals(`${this.#prefix}sub:${clientId}`);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'getSubscriptions');
    }
    return values.map(decodeSubscription);
  }

  async loadOutbound(clientId: string): Promise<OutboundWithMessage[]> {
    const redis = this.#client();
    let reply: Buffer[];
    try {
      reply = await redis.ternLoadOutboundBuffer(this.#meta, [this.#prefix, clientId]);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'loadOutbound');
    }
    const out: OutboundWithMessage[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      out.push({
        entry: decodeEntry(Number(reply[i]!.toString()), reply[i + 1]!.toString()),
        message: decodeMessage(reply[i + 2]!),
      });
    }
    return out.sort(bySeq);
  }

  async loadInbound(clientId: string): Promise<number[]> {
    const redis = this.#client();
    let ids: string[];
    try {
      ids = await redis.smembers(`${this.#prefix}in:${clientId}`);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'loadInbound');
    }
    return ids.map(Number).sort(ascending);
  }

  async *matchRetained(filter: string): AsyncIterable<StoredMessage> {
    const prefix = literalPrefix(filter);
    if (prefix === null) {
      const m = await this.getRetained(filter);
      if (m !== undefined) yield m;
      return;
    }
    let min: Arg;
    let max: Arg;
    if (prefix === '') {
      min = '-';
      max = '+';
    } else {
      const start = Buffer.from(prefix);
      min = Buffer.concat([OPEN_BRACKET, start]);
      max = Buffer.concat([OPEN_PAREN, start, END_BYTE]);
    }
    for (;;) {
      const redis = this.#client();
      let page: Buffer[];
      try {
        page = await redis.ternRetainedPageBuffer(this.#meta, [this.#prefix, min, max, PAGE_SIZE]);
      } catch (err) {
        throw this.#error(err, 'ERR_STORAGE_OPEN', 'matchRetained');
      }
      for (let i = 2; i < page.length; i += 2) {
        if (topicMatches(filter, page[i]!.toString())) yield decodeMessage(page[i + 1]!);
      }
      if (Number(page[1]!.toString()) < PAGE_SIZE) return;
      min = Buffer.concat([OPEN_PAREN, page[0]!]);
    }
  }

  async getRetained(topic: string): Promise<StoredMessage | undefined> {
    const redis = this.#client();
    let blob: Buffer | null;
    try {
      blob = await redis.ternGetRetainedBuffer(this.#meta, [this.#prefix, topic]);
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'getRetained');
    }
    return blob === null ? undefined : decodeMessage(blob);
  }

  async retainedStats(): Promise<RetainedStats> {
    const redis = this.#client();
    try {
      const [count, bytes] = await Promise.all([
        redis.zcard(this.#retainedIndex),
        redis.hget(this.#meta, 'retained-bytes'),
      ]);
      return { count, bytes: Number(bytes ?? 0) };
    } catch (err) {
      throw this.#error(err, 'ERR_STORAGE_OPEN', 'retainedStats');
    }
  }

  async purgeExpired(now: number): Promise<PurgeResult> {
    const result: PurgeResult = { sessions: [], messages: 0 };
    for (;;) {
      const redis = this.#client();
      let reply: Array<string | number>;
      try {
        reply = await redis.ternPurge(this.#meta, [this.#prefix, now, PURGE_BATCH]);
      } catch (err) {
        throw this.#error(err, 'ERR_STORAGE_WRITE', 'purgeExpired');
      }
      result.messages += Number(reply[0]);
      for (let i = 2; i < reply.length; i++) result.sessions.push(String(reply[i]));
      if (Number(reply[1]) === 0) return result;
    }
  }

  #client(): Client {
    if (this.#redis === null) throw ternError('ERR_STORAGE_CLOSED');
    return this.#redis;
  }

  /** The commit script's arguments for `ops`. */
  #encode(ops: readonly StorageOp[]): Arg[] {
    const args: Arg[] = [this.#prefix, this.#limits[0], this.#limits[1]];
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      switch (op.type) {
        case 'putSession': {
          const expiresAt = sessionExpiresAt(op.session);
          args.push(OP.putSession, op.session.clientId, encodeSession(op.session), expiresAt ?? '');
          break;
        }
        case 'deleteSession':
          args.push(OP.deleteSession, op.clientId);
          break;
        case 'putSubscription':
          args.push(OP.putSubscription, op.clientId, op.subscription.filter, encodeSubscription(op.subscription));
          break;
        case 'deleteSubscription':
          args.push(OP.deleteSubscription, op.clientId, op.filter);
          break;
        case 'putMessage':
          args.push(OP.putMessage, op.message.id, encodeMessage(op.message), op.message.expiresAt ?? '');
          break;
        case 'putOutbound':
          args.push(OP.putOutbound, op.clientId, op.entry.seq, encodeEntry(op.entry));
          break;
        case 'deleteOutbound':
          args.push(OP.deleteOutbound, op.clientId, op.seq);
          break;
        case 'putInbound':
          args.push(OP.putInbound, op.clientId, op.packetId);
          break;
        case 'deleteInbound':
          args.push(OP.deleteInbound, op.clientId, op.packetId);
          break;
        case 'putRetained': {
          const m = op.message;
          args.push(OP.putRetained, m.topic, m.id, encodeMessage(m), m.expiresAt ?? '', m.payload.length);
          break;
        }
        case 'deleteRetained':
          args.push(OP.deleteRetained, op.topic);
          break;
        default:
          throw ternError('ERR_STORAGE_INVALID_OP', `unknown op ${JSON.stringify((op as { type?: unknown }).type)}`);
      }
    }
    return args;
  }

  /** Maps a script's error reply or a connection failure to a TernError. */
  #error(err: unknown, code: ErrorCode, what: string): Error {
    if (isTernError(err)) return err;
    const message = (err as Error).message ?? String(err);
    if (message.startsWith(INVALID_OP)) {
      return ternError('ERR_STORAGE_INVALID_OP', message.slice(INVALID_OP.length + 1), { cause: err });
    }
    if (message.startsWith(RETAINED_LIMIT)) {
      return ternError('ERR_STORAGE_RETAINED_LIMIT', message.slice(RETAINED_LIMIT.length + 1), { cause: err });
    }
    const last = this.#lastError !== null && this.#lastError.message !== message ? ` (${this.#lastError.message})` : '';
    return ternError(code, `${this.#where()} ${what}: ${message}${last}`, { cause: err });
  }

  /** The server, for messages (without credentials). */
  #where(): string {
    try {
      const u = new URL(this.#url);
      return `redis ${u.host}${u.pathname === '/' ? '' : u.pathname} prefix ${JSON.stringify(this.#prefix)}`;
    } catch {
      return `redis prefix ${JSON.stringify(this.#prefix)}`;
    }
  }
}

function bySeq(a: OutboundWithMessage, b: OutboundWithMessage): number {
  return a.entry.seq - b.entry.seq;
}

function ascending(a: number, b: number): number {
  return a - b;
}
