/**
 * One node of a Tern cluster: several brokers sharing one Redis (their
 * storage backend too) behave as one broker. Redis is the only coordinator;
 * Tern adds no consensus of its own.
 *
 * Keys (P = storage.redis_prefix):
 *   P cluster:nodes           set     member node ids
 *   P cluster:hb:<node>       string  heartbeat, expires after node_timeout_ms
 *   P cluster:owners          hash    client id -> node holding its session
 *   P cluster:wills:<node>    hash    client id -> will of a live connection
 *   P cluster:routes:<node>   set     that node's filters (routes.ts)
 *   P cluster:fwd:<node>      stream  messages for that node (forwarder.ts)
 *   P cluster:adopt:<node>    string  lock held by the node adopting a dead one
 *   P cluster:message-ids     string  id blocks (ids.ts)
 * Channels: `P cluster:routes` (route announcements), `P cluster:ctl:<node>`
 * (requests to one node: take-over, and its replies).
 *
 * Sessions have one owner at a time. A CONNECT claims the client id
 * (owners[id] = this node, atomically returning the previous owner); a live
 * previous owner is asked to let go (it disconnects the client with 0x8E,
 * stores the session and forgets it) before this node loads the session from
 * the store. A node whose heartbeat lapses is dead: one survivor (by lock)
 * adopts it: claims its sessions, loads them, publishes the wills of the
 * connections it had, drains the messages left in its stream into the
 * adopted sessions, then removes its routes and membership.
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import { createRedis } from '../persistence/redis-connect.js';
import type { RouteScope } from '../broker/router.js';
import type { Will } from '../codec/types.js';
import { ternError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { decodeMessage, encodeMessage } from '../persistence/redis-codec.js';
import type { StoredMessage } from '../persistence/types.js';
import { Forwarder, type Forwarded } from './forwarder.js';
import { IdBlocks } from './ids.js';
import { RouteMatch, RouteTable } from './routes.js';

export interface ClusterOptions {
  /** This node's id; empty = `<hostname>-<pid>`. Set it for a node that must come back as itself (StatefulSet). */
  nodeId: string;
  redisUrl: string;
  prefix: string;
  heartbeatIntervalMs: number;
  nodeTimeoutMs: number;
  /** Longest wait for a previous owner to let go of a session on take-over. */
  takeoverTimeoutMs: number;
}

/** What the cluster needs from the broker core. */
export interface ClusterHost {
  readonly log: Logger;
  /** Let go of a session another node takes over; resolves once its state is stored. */
  releaseSession(clientId: string, resumes: boolean): Promise<void>;
  /**
   * Load and keep sessions of a dead node from the store, announcing their
   * routes but not yet delivering to them directly; `wills` were its live
   * connections' wills.
   */
  adoptSessions(clientIds: readonly string[], wills: ReadonlyMap<string, Will>): Promise<void>;
  /** The dead node's stream is drained into the adopted sessions: deliver to them normally from now on. */
  adoptionDone(): Promise<void>;
  /** Route messages another node forwarded; `only` limits delivery to those sessions. Resolves once stored. */
  deliverForwarded(items: readonly Forwarded[], only?: ReadonlySet<string>): Promise<void>;
  /** This node was declared dead while cut off from Redis: drop every session (their new owner has them). */
  evicted(): void;
}

const CLAIM = `
local prev = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prev and prev ~= ARGV[2] then
  return {prev, redis.call('EXISTS', ARGV[3] .. prev)}
end
return {prev or '', 0}`;

/** Move every client id owned by ARGV[1] to ARGV[2]; returns them. */
const ADOPT = `
local ids = {}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  if all[i + 1] == ARGV[1] then
    redis.call('HSET', KEYS[1], all[i], ARGV[2])
    ids[#ids + 1] = all[i]
  end
end
return ids`;

export class Cluster {
  readonly nodeId: string;
  readonly #opts: ClusterOptions;
  readonly #host: ClusterHost;
  readonly #prefix: string;
  #redis!: Redis;
  #sub!: Redis;
  #reader!: Redis;
  routes!: RouteTable;
  forwarder!: Forwarder;
  ids!: IdBlocks;
  readonly #match = new RouteMatch();
  readonly #skip = new Set<string>();
  readonly #scope: RouteScope = { normal: true, skipGroups: this.#skip, onlyGroups: null };
  readonly #cursors = new Map<string, number>();
  readonly #waiting = new Map<string, () => void>();
  #reqCounter = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #connected = false;
  #checking = false;
  #readLoop: Promise<void> | null = null;
  /** Set while adopting: this node's stream is not routed until it resolves. */
  #gate: Promise<void> | null = null;

  constructor(opts: ClusterOptions, host: ClusterHost) {
    this.#opts = opts;
    this.#host = host;
    this.#prefix = opts.prefix;
    this.nodeId = opts.nodeId !== '' ? opts.nodeId : `${hostname()}-${process.pid}`;
  }

  /** Connected to Redis and registered: the node can take new work. */
  get ready(): boolean {
    return this.#connected && !this.#closed;
  }

  #key(name: string): string {
    return `${this.#prefix}cluster:${name}`;
  }

  /** Connect, take an id block, join, load the route table and start reading this node's stream. */
  async start(): Promise<void> {
    const redisOpts = { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 };
    this.#redis = createRedis(this.#opts.redisUrl, redisOpts);
    this.#sub = createRedis(this.#opts.redisUrl, { ...redisOpts, enableOfflineQueue: true });
    this.#reader = createRedis(this.#opts.redisUrl, { ...redisOpts, maxRetriesPerRequest: null, enableOfflineQueue: true });
    for (const r of [this.#redis, this.#sub, this.#reader]) r.on('error', () => {}); // logged via the state changes below
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('no answer within 10 s')), 10_000);
    });
    const connecting = Promise.all([this.#redis.connect(), this.#sub.connect(), this.#reader.connect()]);
    await Promise.race([connecting, deadline]).finally(() => clearTimeout(timer)).catch((err: unknown) => {
      connecting.catch(() => {});
      this.#redis.disconnect();
      this.#sub.disconnect();
      this.#reader.disconnect();
      throw ternError('ERR_CLUSTER_REDIS', `cannot reach ${this.#opts.redisUrl}: ${(err as Error).message}`, { cause: err });
    });
    this.routes = new RouteTable(this.#redis, this.#prefix, this.nodeId);
    this.routes.onError = (err) => this.#host.log.warn({ err }, 'cluster route update failed');
    this.forwarder = new Forwarder(this.#redis, this.#prefix);
    this.forwarder.onError = (err) => this.#host.log.warn({ err }, 'cluster forward failed');
    this.ids = new IdBlocks(this.#redis, this.#prefix);
    this.ids.onError = (err) => this.#host.log.error({ err }, 'cluster message id block not reserved');
    await this.ids.start();

    this.#sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.#onMessage(channel.toString(), message.toString()));
    await this.#sub.subscribe(this.routes.channel, this.#key(`ctl:${this.nodeId}`));
    await this.#join();
    this.#connected = true;
    this.#redis.on('close', () => this.#onLost());
    this.#redis.on('ready', () => void this.#onBack());

    const from = await this.forwarder.position(this.nodeId);
    this.#readLoop = this.forwarder.readLoop(
      this.#reader,
      this.nodeId,
      from,
      // While a dead node's stream drains, this node's own waits: older messages first.
      (items) => (this.#gate === null ? this.#host.deliverForwarded(items) : this.#gate.then(() => this.#host.deliverForwarded(items))),
      () => this.#closed,
      (err) => this.#host.log.warn({ err }, 'cluster stream read failed'),
    );
    this.#timer = setInterval(() => void this.#tick(), this.#opts.heartbeatIntervalMs);
    this.#timer.unref();
    this.#host.log.info({ node: this.nodeId }, 'joined the cluster');
  }

  /** The ids of nodes in the cluster (this one included). */
  async nodes(): Promise<string[]> {
    return this.#redis.smembers(this.#key('nodes'));
  }

  async #join(): Promise<void> {
    await this.#redis
      .multi()
      .sadd(this.#key('nodes'), this.nodeId)
      .set(this.#key(`hb:${this.nodeId}`), String(Date.now()), 'PX', this.#opts.nodeTimeoutMs)
      .exec();
    await this.routes.load(await this.nodes());
  }

  /** Sessions this node owns in the store (to restore at start); unowned ones are claimed. */
  async ownedSessions(clientIds: readonly string[]): Promise<Set<string>> {
    const owners = await this.#redis.hgetall(this.#key('owners'));
    const mine = new Set<string>();
    const unowned: string[] = [];
    for (const id of clientIds) {
      const owner = owners[id];
      if (owner === this.nodeId) mine.add(id);
      else if (owner === undefined) unowned.push(id);
    }
    for (const id of unowned) {
      if ((await this.#redis.hsetnx(this.#key('owners'), id, this.nodeId)) === 1) mine.add(id);
    }
    return mine;
  }

  /** Wills this node's previous run left (it died with those connections open); cleared. */
  async leftoverWills(): Promise<Map<string, Will>> {
    const key = this.#key(`wills:${this.nodeId}`);
    const wills = decodeWills(await this.#redis.hgetallBuffer(key));
    await this.#redis.del(key);
    return wills;
  }

  // ---- sessions ----

  /**
   * Make this node the owner of `clientId`; a live previous owner lets go of
   * it first (waited for at most takeover_timeout_ms). Returns the previous
   * owner ('' when none). `prepare` runs before a live owner is asked (routing
   * the session's subscriptions here already).
   */
  async claim(clientId: string, resumes: boolean, prepare?: () => Promise<void>): Promise<string> {
    const [prev, alive] = (await this.#redis.eval(CLAIM, 1, this.#key('owners'), clientId, this.nodeId, this.#key('hb:'))) as [string, number];
    if (prev !== '' && prev !== this.nodeId && alive === 1) {
      await prepare?.();
      await this.#request(prev, { type: 'takeover', clientId, resumes });
    }
    return prev;
  }

  /** Forget the owner of a session that ended here. */
  disown(clientId: string): void {
    // Only if still ours: a take-over elsewhere may have claimed it already.
    this.#redis
      .eval(`if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end`, 1, this.#key('owners'), clientId, this.nodeId)
      .catch(() => {});
  }

  /** Remember a live connection's will (published by the adopter if this node dies). */
  setWill(clientId: string, will: Will | undefined): void {
    const key = this.#key(`wills:${this.nodeId}`);
    const p = will === undefined ? this.#redis.hdel(key, clientId) : this.#redis.hset(key, clientId, encodeWill(will));
    p.catch(() => {});
  }

  // ---- routing ----

  /**
   * Decide where `message` goes besides this node: non-shared subscribers'
   * nodes, and for each matching shared group one node among those with
   * members (this one included). Returns the groups this node must skip.
   */
  plan(topic: string): RouteScope | null {
    const match = this.#match;
    this.routes.match(topic, match);
    if (match.groups.size === 0) return null;
    const skip = this.#skip;
    skip.clear();
    for (const [key, group] of match.groups) {
      const local = this.routes.localFilters.has(key);
      const count = group.members.size + (local ? 1 : 0);
      const cursor = this.#cursors.get(key) ?? 0;
      this.#cursors.set(key, cursor + 1);
      const pick = cursor % count;
      if (local && pick === count - 1) {
        match.groups.delete(key); // served here
        continue;
      }
      skip.add(key);
    }
    return skip.size > 0 ? this.#scope : null;
  }

  /** Whether the last plan() found other nodes to send to. */
  get hasTargets(): boolean {
    return !this.#match.empty;
  }

  /** Send `message` to the nodes the last plan() found; returns how many nodes it went to. */
  forward(message: StoredMessage, origin: string | undefined): number {
    const match = this.#match;
    if (match.empty) return 0;
    let n = 0;
    for (const node of match.nodes) {
      const groups: string[] = [];
      for (const [key, group] of match.groups) if (this.#pickedNode(key, group.members) === node) groups.push(key);
      this.forwarder.send(node, { message, origin, normal: true, groups });
      n++;
    }
    for (const [key, group] of match.groups) {
      const node = this.#pickedNode(key, group.members);
      if (node === undefined || match.nodes.has(node)) continue;
      // Several groups picking the same node travel in one item.
      const groups = [key];
      for (const [k2, g2] of match.groups) if (k2 !== key && this.#pickedNode(k2, g2.members) === node) groups.push(k2);
      for (const k of groups) match.groups.delete(k);
      this.forwarder.send(node, { message, origin, normal: false, groups });
      n++;
    }
    match.clear();
    return n;
  }

  /** The remote node plan() picked for a group (the cursor was advanced past it). */
  #pickedNode(key: string, members: ReadonlyMap<string, string>): string | undefined {
    const local = this.routes.localFilters.has(key);
    const count = members.size + (local ? 1 : 0);
    const pick = ((this.#cursors.get(key) ?? 1) - 1) % count;
    let i = 0;
    for (const node of members.keys()) if (i++ === pick) return node;
    return undefined;
  }

  /** Promise of the writes (routes, forwarded messages) acknowledgements must wait for. */
  pendingFlush(): Promise<void> | undefined {
    const a = this.routes.pendingFlush();
    const b = this.forwarder.pendingFlush();
    if (a === undefined) return b;
    if (b === undefined) return a;
    return Promise.all([a, b]).then(() => undefined);
  }

  // ---- requests between nodes ----

  async #request(node: string, body: { type: 'takeover'; clientId: string; resumes: boolean }): Promise<void> {
    const req = `${this.nodeId}#${++this.#reqCounter}`;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(req);
        this.#host.log.warn({ node, clientId: body.clientId }, 'session take-over: previous node did not answer in time');
        resolve();
      }, this.#opts.takeoverTimeoutMs);
      this.#waiting.set(req, () => {
        clearTimeout(timer);
        resolve();
      });
    });
    await this.#redis.publish(this.#key(`ctl:${node}`), JSON.stringify({ ...body, from: this.nodeId, req }));
    await done;
  }

  #onMessage(channel: string, text: string): void {
    if (channel === this.routes.channel) {
      this.routes.receive(text);
      return;
    }
    let msg: { type: string; from: string; req: string; clientId?: string; resumes?: boolean };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      return;
    }
    if (msg.type === 'reply') {
      this.#waiting.get(msg.req)?.();
      this.#waiting.delete(msg.req);
    } else if (msg.type === 'takeover' && msg.clientId !== undefined) {
      this.#host
        .releaseSession(msg.clientId, msg.resumes === true)
        .catch((err: unknown) => this.#host.log.warn({ err, clientId: msg.clientId }, 'session release failed'))
        .finally(() => {
          this.#redis.publish(this.#key(`ctl:${msg.from}`), JSON.stringify({ type: 'reply', from: this.nodeId, req: msg.req })).catch(() => {});
        });
    } else if (msg.type === 'left') {
      void this.#tick();
    }
  }

  // ---- membership ----

  /** Heartbeat, then look for dead nodes. */
  async #tick(): Promise<void> {
    if (this.#closed || !this.#connected || this.#checking) return;
    this.#checking = true;
    try {
      const key = this.#key(`hb:${this.nodeId}`);
      await this.#redis.set(key, String(Date.now()), 'PX', this.#opts.nodeTimeoutMs);
      const nodes = await this.nodes();
      if (!nodes.includes(this.nodeId)) {
        // Declared dead while cut off: its sessions went to other nodes.
        this.#host.log.warn({ node: this.nodeId }, 'this node was removed from the cluster while cut off; dropping its sessions and joining again');
        this.#host.evicted();
        await this.#join();
        return;
      }
      const others = nodes.filter((n) => n !== this.nodeId);
      if (others.length === 0) return;
      // One command however many nodes: the background cost grows with the node count, not its square.
      const beats = await this.#redis.mget(...others.map((n) => this.#key(`hb:${n}`)));
      for (let i = 0; i < others.length; i++) {
        if (beats[i] === null) await this.#adopt(others[i]!);
      }
    } catch (err) {
      this.#host.log.warn({ err }, 'cluster heartbeat failed');
    } finally {
      this.#checking = false;
    }
  }

  async #adopt(dead: string): Promise<void> {
    const lock = await this.#redis.set(this.#key(`adopt:${dead}`), this.nodeId, 'PX', 60_000, 'NX');
    if (lock !== 'OK') return;
    let open!: () => void;
    this.#gate = new Promise<void>((resolve) => (open = resolve));
    try {
      await this.#adoptLocked(dead);
    } finally {
      this.#gate = null;
      open();
    }
  }

  async #adoptLocked(dead: string): Promise<void> {
    const log = this.#host.log;
    log.warn({ node: dead }, 'cluster node stopped answering; adopting its sessions');
    const ids = (await this.#redis.eval(ADOPT, 1, this.#key('owners'), dead, this.nodeId)) as string[];
    const wills = decodeWills(await this.#redis.hgetallBuffer(this.#key(`wills:${dead}`)));
    await this.#host.adoptSessions(ids, wills);
    await this.routes.pendingFlush();
    // Messages the dead node had not routed yet go to the sessions adopted from it: those
    // already in its stream, then (after its routes are gone) those sent meanwhile.
    const only = new Set(ids);
    const drain = async (from: string): Promise<[string, number]> => {
      let drained = 0;
      for (;;) {
        const entries = await this.forwarder.range(dead, from, 64);
        if (entries.length === 0) return [from, drained];
        const items = entries.flatMap(([, batch]) => batch);
        if (only.size > 0) await this.#host.deliverForwarded(items, only);
        drained += items.length;
        from = entries[entries.length - 1]![0];
      }
    };
    let [from, drained] = await drain(await this.forwarder.position(dead));
    await this.routes.removeNode(dead);
    // Nodes that had not seen the removal yet may still have written to its stream.
    await new Promise((r) => setTimeout(r, this.#opts.heartbeatIntervalMs));
    const [, more] = await drain(from);
    drained += more;
    await this.#host.adoptionDone();
    await this.forwarder.drop(dead);
    await this.#redis.multi().srem(this.#key('nodes'), dead).del(this.#key(`wills:${dead}`)).exec();
    log.info({ node: dead, sessions: ids.length, wills: wills.size, drained }, 'adopted a dead node');
  }

  #onLost(): void {
    if (this.#closed || !this.#connected) return;
    this.#connected = false;
    this.#host.log.error({ node: this.nodeId }, 'cluster lost Redis; refusing new connections until it returns');
  }

  async #onBack(): Promise<void> {
    if (this.#closed || this.#connected) return;
    try {
      const member = (await this.#redis.sismember(this.#key('nodes'), this.nodeId)) === 1;
      if (!member) {
        this.#host.log.warn({ node: this.nodeId }, 'this node was removed from the cluster while cut off; dropping its sessions');
        this.#host.evicted();
      }
      await this.#join();
      await this.routes.republish();
      this.#connected = true;
      this.#host.log.info({ node: this.nodeId }, 'cluster reconnected to Redis');
    } catch (err) {
      this.#host.log.warn({ err }, 'cluster rejoin failed; retrying');
      setTimeout(() => void this.#onBack(), 1000).unref();
    }
  }

  /**
   * Leave: the heartbeat goes at once and the others are told, so one of
   * them adopts this node's persistent sessions (and the messages still in
   * its stream) without waiting for the timeout.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    try {
      const multi = this.#redis.multi().del(this.#key(`hb:${this.nodeId}`)).del(this.#key(`wills:${this.nodeId}`));
      const others = (await this.nodes()).filter((n) => n !== this.nodeId);
      for (const n of others) multi.publish(this.#key(`ctl:${n}`), JSON.stringify({ type: 'left', from: this.nodeId, req: '' }));
      if (others.length === 0) {
        // The last node: nobody will adopt; leave the sessions to whoever starts next.
        multi.srem(this.#key('nodes'), this.nodeId).del(this.#key(`routes:${this.nodeId}`));
      }
      await multi.exec();
    } catch {
      // Redis gone: the heartbeat expires on its own.
    }
    // Disconnecting rejects the reader's blocked XREAD, except on a Redis Cluster client: there
    // the read loop is not waited for longer than its block time.
    this.#reader.disconnect();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#readLoop?.catch(() => {}), new Promise((r) => (timer = setTimeout(r, 1500)))]);
    clearTimeout(timer);
    this.#sub.disconnect();
    this.#redis.disconnect();
  }
}

function encodeWill(will: Will): Buffer {
  const stored: StoredMessage = { id: 0, topic: will.topic, payload: will.payload, qos: will.qos, retain: will.retain, createdAt: 0 };
  if (will.properties !== undefined) stored.properties = will.properties;
  return encodeMessage(stored);
}

function decodeWills(raw: Record<string, Buffer>): Map<string, Will> {
  const wills = new Map<string, Will>();
  for (const [clientId, blob] of Object.entries(raw)) {
    try {
      const m = decodeMessage(blob);
      const will: Will = { topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain };
      if (m.properties !== undefined) will.properties = m.properties;
      wills.set(clientId, will);
    } catch {
      // A damaged entry is skipped.
    }
  }
  return wills;
}
