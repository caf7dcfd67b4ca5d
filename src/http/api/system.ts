/**
 * /api/v1/overview (figures for the dashboard), /api/v1/bans (the auth
 * layer's ban list), /api/v1/reload and /api/v1/bridges.
 */
import { ReasonCode } from '../../codec/constants.js';
import type { HttpContext } from '../context.js';
import { asObject, badRequest, HttpError, notFound, readJson, sendJson } from '../respond.js';
import type { Router } from '../router.js';
import { BAN_KINDS, type Ban, type BanList } from '../../ops/types.js';

const notImplemented = (what: string): HttpError => new HttpError(501, 'not_implemented', `${what} is not available on this broker`);

function requireBans(ctx: HttpContext): BanList {
  const bans = ctx.options.bans;
  if (bans === undefined) throw notImplemented('the ban list');
  return bans;
}

function parseBan(body: Record<string, unknown>): Ban {
  const kind = body['kind'];
  if (typeof kind !== 'string' || !(BAN_KINDS as readonly string[]).includes(kind)) {
    throw badRequest(`kind must be one of ${BAN_KINDS.join(', ')}`);
  }
  const value = body['value'];
  if (typeof value !== 'string' || value === '') throw badRequest('value must be a non-empty string');
  const ban: Ban = { kind: kind as Ban['kind'], value };
  const reason = body['reason'];
  if (reason !== undefined) {
    if (typeof reason !== 'string') throw badRequest('reason must be a string');
    ban.reason = reason;
  }
  const expiresAt = body['expiresAt'];
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== 'string' || Number.isNaN(Date.parse(expiresAt))) throw badRequest('expiresAt must be an ISO 8601 date-time');
    ban.expiresAt = new Date(expiresAt).toISOString();
  }
  return ban;
}

export function registerSystemRoutes(router: Router, ctx: HttpContext): void {
  const broker = ctx.broker;

  router.get('/api/v1/overview', async ({ res }) => {
    const s = await ctx.snapshot();
    sendJson(res, 200, {
      version: ctx.version,
      time: new Date(s.at).toISOString(),
      startedAt: new Date(broker.core.startedAt).toISOString(),
      uptimeSeconds: s.uptimeSeconds,
      listeners: broker.addresses,
      connections: s.connections,
      connectionsTotal: s.connectionsTotal,
      sessions: { total: s.sessions, online: s.sessionsOnline, offline: s.sessionsOffline },
      subscriptions: s.subscriptions,
      retained: { count: s.retainedCount, bytes: s.retainedBytes },
      messages: { received: s.messagesReceived, sent: s.messagesSent, dropped: s.dropped },
      inflight: s.inflight,
      queued: s.queued,
      streams: ctx.streams,
      messageLog: ctx.sinks(),
    });
  });

  router.get('/api/v1/bans', async ({ res }) => {
    const bans = ctx.options.bans;
    sendJson(res, 200, { available: bans !== undefined, items: bans !== undefined ? await bans.list() : [] });
  });

  router.post('/api/v1/bans', async ({ req, res }) => {
    const bans = requireBans(ctx);
    const ban = parseBan(asObject(await readJson(req, ctx.config.maxBodyBytes)));
    await bans.add(ban);
    // A ban takes effect now: connected clients it covers are disconnected.
    let disconnected = 0;
    for (const conn of [...broker.core.connections]) {
      const hit =
        (ban.kind === 'clientId' && conn.clientId === ban.value) ||
        (ban.kind === 'username' && conn.username === ban.value) ||
        (ban.kind === 'address' && conn.info.remoteAddress === ban.value);
      if (hit && conn.connected) {
        conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION, 'banned');
        disconnected++;
      }
    }
    sendJson(res, 201, { ban, disconnected });
  });

  router.delete('/api/v1/bans/:kind/:value', async ({ res, params }) => {
    const bans = requireBans(ctx);
    const kind = params['kind']!;
    if (!(BAN_KINDS as readonly string[]).includes(kind)) throw badRequest(`kind must be one of ${BAN_KINDS.join(', ')}`);
    if (!(await bans.remove(kind as Ban['kind'], params['value']!))) throw notFound(`no ${kind} ban on ${JSON.stringify(params['value'])}`);
    sendJson(res, 200, { kind, value: params['value'], removed: true });
  });

  router.post('/api/v1/reload', async ({ req, res }) => {
    await readJson(req, ctx.config.maxBodyBytes);
    const reload = ctx.options.reload;
    if (reload === undefined) throw notImplemented('configuration reload');
    let result: { reloaded?: unknown; failures?: unknown };
    try {
      result = await reload();
    } catch (err) {
      throw new HttpError(500, 'reload_failed', (err as Error)?.message ?? String(err));
    }
    if (result.reloaded === false) {
      // The new configuration was refused as a whole: nothing changed, the failures say why.
      const failures = Array.isArray(result.failures) ? (result.failures as Array<{ message?: unknown }>) : [];
      const message = failures.map((f) => String(f.message)).join('\n') || 'the configuration was not reloaded';
      sendJson(res, 422, { ...result, error: { code: 'reload_refused', message } });
      return;
    }
    sendJson(res, 200, { reloaded: true, ...result });
  });

  router.get('/api/v1/bridges', async ({ res }) => {
    const bridges = ctx.options.bridges;
    sendJson(res, 200, { available: bridges !== undefined, items: bridges !== undefined ? await bridges() : [] });
  });
}
