/**
 * /api/v1/clients (connected clients) and /api/v1/sessions (every session,
 * connected or not): list with search and paging, details, disconnect, delete.
 */
import type { Connection } from '../../broker/connection.js';
import type { Session } from '../../broker/session.js';
import { disconnectClient, endSession, findConnection } from '../../ops/broker-access.js';
import type { HttpContext } from '../context.js';
import { asObject, badRequest, notFound, readJson, sendJson } from '../respond.js';
import type { Router } from '../router.js';
import { boolParam, byString, page, paging, searcher } from './query.js';

const STATE_NAMES = ['queued', 'sent', 'pubrel'] as const;
const QUEUE_PREVIEW = 20;

function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

function clientSummary(conn: Connection) {
  const session = conn.session;
  return {
    clientId: conn.clientId,
    username: conn.username ?? null,
    address: conn.info.remoteAddress,
    port: conn.info.remotePort,
    listener: conn.info.listener,
    protocolLevel: conn.level,
    keepalive: conn.keepalive,
    lastActivity: iso(conn.lastActivity),
    subscriptions: session?.subscriptions.size ?? 0,
    inflight: session?.inflight.size ?? 0,
    queued: session?.queue.length ?? 0,
  };
}

function sessionSummary(session: Session) {
  return {
    clientId: session.clientId,
    connected: session.link !== null,
    protocolLevel: session.protocolLevel,
    persistent: session.persistent,
    expiryInterval: session.expiryInterval,
    disconnectedAt: session.link !== null ? null : iso(session.disconnectedAt),
    subscriptions: session.subscriptions.size,
    inflight: session.inflight.size,
    queued: session.queue.length,
  };
}

function sessionDetails(session: Session) {
  const queue: Array<{ topic: string; qos: number; bytes: number }> = [];
  for (const out of session.queue) {
    if (queue.length >= QUEUE_PREVIEW) break;
    queue.push({ topic: out.message.topic, qos: out.qos, bytes: out.message.payload.length });
  }
  return {
    ...sessionSummary(session),
    subscriptionList: [...session.subscriptions.values()].map((e) => ({
      filter: e.filter,
      qos: e.qos,
      noLocal: e.noLocal,
      retainAsPublished: e.retainAsPublished,
      retainHandling: e.retainHandling,
      subscriptionId: e.subscriptionId ?? null,
    })),
    inflightList: [...session.inflight.values()].map((out) => ({
      packetId: out.packetId,
      topic: out.message.topic,
      qos: out.qos,
      state: STATE_NAMES[out.state],
    })),
    queuePreview: queue,
  };
}

export function registerClientRoutes(router: Router, ctx: HttpContext): void {
  const core = ctx.broker.core;

  router.get('/api/v1/clients', ({ res, url }) => {
    const match = searcher(url);
    const protocol = url.searchParams.get('protocol');
    if (protocol !== null && !['3', '4', '5'].includes(protocol)) throw badRequest('protocol must be 3, 4 or 5');
    const items = [...core.connections]
      .filter((c) => c.connected && (protocol === null || c.level === Number(protocol)))
      .filter((c) => match(c.clientId, c.username, c.info.remoteAddress))
      .map(clientSummary)
      .sort(byString((c) => c.clientId));
    sendJson(res, 200, page(items, paging(url)));
  });

  router.get('/api/v1/clients/:clientId', ({ res, params }) => {
    const clientId = params['clientId']!;
    const conn = findConnection(ctx.broker, clientId);
    const session = core.sessions.get(clientId);
    if (conn === undefined && session === undefined) throw notFound(`no client ${JSON.stringify(clientId)}`);
    sendJson(res, 200, {
      clientId,
      connected: conn !== undefined,
      connection: conn !== undefined ? clientSummary(conn) : null,
      session: session !== undefined ? sessionDetails(session) : null,
    });
  });

  router.post('/api/v1/clients/:clientId/disconnect', async ({ req, res, params }) => {
    const body = asObject(await readJson(req, ctx.config.maxBodyBytes));
    const clientId = params['clientId']!;
    if (body['endSession'] !== undefined && typeof body['endSession'] !== 'boolean') throw badRequest('endSession must be a boolean');
    if (body['endSession'] === true) {
      if (!(await endSession(ctx.broker, clientId))) throw notFound(`no session ${JSON.stringify(clientId)}`);
      sendJson(res, 200, { clientId, disconnected: true, sessionEnded: true });
      return;
    }
    if (!(await disconnectClient(ctx.broker, clientId))) throw notFound(`client ${JSON.stringify(clientId)} is not connected`);
    sendJson(res, 200, { clientId, disconnected: true, sessionEnded: !core.sessions.has(clientId) });
  });

  router.get('/api/v1/sessions', ({ res, url }) => {
    const match = searcher(url);
    const connected = boolParam(url, 'connected');
    const items = [...core.sessions.values()]
      .filter((s) => (connected === undefined || (s.link !== null) === connected) && match(s.clientId))
      .map(sessionSummary)
      .sort(byString((s) => s.clientId));
    sendJson(res, 200, page(items, paging(url)));
  });

  router.get('/api/v1/sessions/:clientId', ({ res, params }) => {
    const session = core.sessions.get(params['clientId']!);
    if (session === undefined) throw notFound(`no session ${JSON.stringify(params['clientId'])}`);
    sendJson(res, 200, sessionDetails(session));
  });

  router.delete('/api/v1/sessions/:clientId', async ({ res, params }) => {
    const clientId = params['clientId']!;
    if (!(await endSession(ctx.broker, clientId))) throw notFound(`no session ${JSON.stringify(clientId)}`);
    sendJson(res, 200, { clientId, deleted: true });
  });
}
