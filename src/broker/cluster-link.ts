/**
 * The broker core's side of clustering (cluster.enabled): what a node does
 * when another node takes over one of its sessions, when it adopts a dead
 * node's sessions, when messages arrive from other nodes, and when it finds
 * itself removed from the cluster. The cluster module (src/cluster) decides
 * when; this file changes the core's state.
 */
import { ReasonCode } from '../codec/constants.js';
import type { Will } from '../codec/types.js';
import { Cluster, type ClusterHost } from '../cluster/cluster.js';
import type { Forwarded } from '../cluster/forwarder.js';
import type { Connection } from './connection.js';
import type { BrokerCore } from './core.js';
import { Message } from './message.js';
import { Router, type RouteScope } from './router.js';
import type { Session, SubscriptionEntry } from './session.js';
import { TopicTrie } from './topic-trie.js';

const NO_GROUPS: ReadonlySet<string> = new Set();
const NORMAL_ONLY: RouteScope = { normal: true, skipGroups: null, onlyGroups: NO_GROUPS };
const NOTHING: RouteScope = { normal: false, skipGroups: null, onlyGroups: NO_GROUPS };

export function createClusterLink(core: BrokerCore): Cluster {
  const cfg = core.config;
  const cluster = new Cluster(
    {
      nodeId: cfg.cluster.nodeId,
      redisUrl: cfg.storage.redisUrl,
      prefix: cfg.storage.redisPrefix,
      heartbeatIntervalMs: cfg.cluster.heartbeatIntervalMs,
      nodeTimeoutMs: cfg.cluster.nodeTimeoutMs,
      takeoverTimeoutMs: cfg.cluster.takeoverTimeoutMs,
    },
    new ClusterLink(core),
  );
  // The route table follows the subscription trie: a filter's first and last subscriber.
  core.trie.onFilterChange = (filter, present) => cluster.routes.change(filter, present);
  return cluster;
}

class ClusterLink implements ClusterHost {
  readonly #core: BrokerCore;
  #adopting: { sessions: Session[]; router: Router; held: Message[] } | null = null;

  constructor(core: BrokerCore) {
    this.#core = core;
  }

  get log(): BrokerCore['log'] {
    return this.#core.log;
  }

  async releaseSession(clientId: string, resumes: boolean): Promise<void> {
    const core = this.#core;
    const session = core.sessions.get(clientId);
    if (session === undefined || session.ended) return;
    const conn = session.link as Connection | null;
    if (conn !== null) {
      conn.session = null;
      session.detach();
      conn.closeReason = 'session taken over on another node';
      conn.disconnect(ReasonCode.SESSION_TAKEN_OVER, 'session taken over');
      session.disconnectedAt = Date.now();
      const will = session.will;
      session.will = undefined;
      if (will !== undefined) {
        core.cluster!.setWill(clientId, undefined);
        // As for a take-over on one node: a delayed will is dropped when the session resumes in time [MQTT-3.1.3-9].
        if (!((will.properties?.willDelayInterval ?? 0) > 0 && resumes)) core.publishWill(will, clientId);
      }
    }
    if (session.expiryInterval === 0) {
      core.endSession(session, false);
      return;
    }
    // Stored as it is now; the new owner loads it from the store.
    core.durable.putSession(session);
    this.#forget(session);
    await core.durable.flush();
  }

  /**
   * Adopted sessions stay out of the subscription trie until the dead
   * node's stream is drained into them (adoptionDone), so messages already
   * on their way through that stream arrive before newer ones: their routes
   * are announced at once (other nodes' messages wait in this node's stream,
   * which is not read meanwhile), and local publishes for them are held.
   */
  async adoptSessions(clientIds: readonly string[], wills: ReadonlyMap<string, Will>): Promise<void> {
    const core = this.#core;
    const adopted: Session[] = [];
    for (const clientId of clientIds) {
      const session = await core.loadStoredSession(clientId, false);
      if (session !== undefined) adopted.push(session);
    }
    const ids = new Set(adopted.map((s) => s.clientId));
    const router = this.#routerFor(ids);
    const held: Message[] = [];
    this.#adopting = { sessions: adopted, router, held };
    core.adoptionTap = (message) => held.push(message);
    const routes = core.cluster!.routes;
    for (const session of adopted) for (const filter of session.subscriptions.keys()) if (!routes.localFilters.has(filter)) routes.change(filter, true);
    // Wills of the dead node's other connections (clean sessions: not in the store).
    for (const [clientId, will] of wills) if (!core.sessions.has(clientId)) core.publishWill(will, clientId);
    if (core.durable.dirty) await core.durable.flush();
  }

  async adoptionDone(): Promise<void> {
    const core = this.#core;
    const adopting = this.#adopting;
    this.#adopting = null;
    core.adoptionTap = null;
    if (adopting === null) return;
    for (const message of adopting.held) adopting.router.route(message);
    for (const session of adopting.sessions) {
      if (session.ended) continue;
      for (const entry of session.subscriptions.values()) core.trie.add(entry.filter, session.clientId, entry);
    }
    if (core.durable.dirty) await core.durable.flush();
  }

  async deliverForwarded(items: readonly Forwarded[], only?: ReadonlySet<string>): Promise<void> {
    const core = this.#core;
    const router = only === undefined ? core.router : this.#routerFor(only);
    let delivered = 0;
    for (const f of items) {
      const m = f.message;
      const message = new Message({
        topic: m.topic,
        payload: m.payload,
        qos: m.qos,
        retain: m.retain,
        properties: m.properties,
        expiresAt: m.expiresAt,
        origin: f.origin,
      });
      if (message.isExpired(Date.now())) continue;
      // The common case (no shared group picked this node) reuses one scope; groups need their own.
      const scope: RouteScope = f.groups.length === 0 ? (f.normal ? NORMAL_ONLY : NOTHING) : { normal: f.normal, skipGroups: null, onlyGroups: new Set(f.groups) };
      delivered += router.route(message, scope);
    }
    core.stats.messagesSent += delivered;
    if (core.durable.dirty) await core.durable.flush();
  }

  evicted(): void {
    const core = this.#core;
    for (const session of [...core.sessions.values()]) {
      const conn = session.link as Connection | null;
      if (conn !== null) {
        conn.session = null;
        session.detach();
        conn.cleanDisconnect = true; // the adopting node published the will
        conn.closeReason = 'node removed from the cluster';
        conn.disconnect(ReasonCode.SESSION_TAKEN_OVER, 'session taken over');
      }
      this.#forget(session);
    }
  }

  /** Drop a session from memory only: its stored state now belongs to another node. */
  #forget(session: Session): void {
    const core = this.#core;
    session.ended = true;
    clearTimeout(session.expiryTimer);
    clearTimeout(session.willTimer);
    session.expiryTimer = undefined;
    session.willTimer = undefined;
    for (const filter of session.subscriptions.keys()) core.trie.remove(filter, session.clientId);
    if (core.sessions.get(session.clientId) === session) core.sessions.delete(session.clientId);
  }

  /** A router that sees only the given sessions' subscriptions (draining a dead node's stream into them). */
  #routerFor(only: ReadonlySet<string>): Router {
    const core = this.#core;
    const trie = new TopicTrie<SubscriptionEntry>();
    for (const clientId of only) {
      const session = core.sessions.get(clientId);
      if (session === undefined) continue;
      for (const entry of session.subscriptions.values()) trie.add(entry.filter, clientId, entry);
    }
    const router = new Router(trie, core.router.epochs);
    router.strategy = core.router.strategy;
    router.readCheck = core.router.readCheck;
    return router;
  }
}
