/**
 * The operations HTTP(S) listener: one node:http server for /healthz,
 * /readyz, /metrics, the admin API under /api/v1 and the dashboard at /.
 * Every path but the two health checks requires the configured credentials:
 * `http.token` (or the token in `http.token_file`, read in start()) and/or
 * basic auth.
 * Errors answer `{ "error": { "code", "message" } }`; an unexpected failure
 * is logged and answers 500 without details.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Socket } from 'node:net';
import { ternError } from '../errors.js';
import { createAuth, readTokenFile, type HttpAuth } from './auth.js';
import { registerClientRoutes } from './api/clients.js';
import { registerPublishRoutes } from './api/publish.js';
import { registerRetainedRoutes } from './api/retained.js';
import { registerStreamRoutes } from './api/stream.js';
import { registerSubscriptionRoutes } from './api/subscriptions.js';
import { registerSystemRoutes } from './api/system.js';
import type { HttpContext } from './context.js';
import { registerHealthRoutes } from './health.js';
import { HttpError, sendError, sendText } from './respond.js';
import { Router } from './router.js';
import { registerDashboardRoutes } from './static.js';

const PUBLIC_PATHS = new Set(['/healthz', '/readyz']);

export interface HttpAddress {
  host: string;
  port: number;
  /** `http` or `https`. */
  protocol: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export class HttpServer {
  readonly #ctx: HttpContext;
  readonly #router = new Router();
  /** Replaced in start() when the token comes from http.token_file. */
  #auth: HttpAuth;
  readonly #sockets = new Set<Socket>();
  #server: http.Server | https.Server | null = null;

  constructor(ctx: HttpContext) {
    this.#ctx = ctx;
    const config = ctx.config;
    this.#auth = createAuth(config);
    if (this.#auth.open && config.tokenFile === '' && !isLoopback(config.host)) {
      throw ternError(
        'ERR_CONFIG_INVALID',
        `http.host ${config.host} is not a loopback address: set http.token, http.token_file or http.username and http.password`,
      );
    }
    if ((config.tlsCert === '') !== (config.tlsKey === '')) {
      throw ternError('ERR_CONFIG_INVALID', 'http.tls_cert and http.tls_key must be set together');
    }
    if ((config.username === '') !== (config.password === '')) {
      throw ternError('ERR_CONFIG_INVALID', 'http.username and http.password must be set together');
    }
    const r = this.#router;
    registerHealthRoutes(r, ctx);
    r.get('/metrics', async ({ res }) => sendText(res, 200, ctx.metrics.contentType, await ctx.metrics.render()));
    registerSystemRoutes(r, ctx);
    registerClientRoutes(r, ctx);
    registerSubscriptionRoutes(r, ctx);
    registerRetainedRoutes(r, ctx);
    registerPublishRoutes(r, ctx);
    registerStreamRoutes(r, ctx);
    if (config.dashboard) registerDashboardRoutes(r);
  }

  async start(): Promise<HttpAddress> {
    const { host, port, tlsCert, tlsKey, tokenFile } = this.#ctx.config;
    if (tokenFile !== '') this.#auth = createAuth({ ...this.#ctx.config, token: await readTokenFile(tokenFile) });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => void this.#handle(req, res);
    let server: http.Server | https.Server;
    if (tlsCert !== '') {
      let cert: Buffer;
      let key: Buffer;
      try {
        [cert, key] = await Promise.all([readFile(tlsCert), readFile(tlsKey)]);
      } catch (err) {
        throw ternError('ERR_CONFIG_INVALID', `http TLS files: ${(err as Error).message}`, { cause: err });
      }
      server = https.createServer({ cert, key }, handler);
    } else {
      server = http.createServer(handler);
    }
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) => reject(ternError('ERR_LISTEN', `http ${host}:${port}: ${err.message}`, { cause: err })));
      server.listen(port, host, () => resolve());
    });
    server.on('error', (err) => this.#ctx.broker.log.error({ err }, 'http server error'));
    this.#server = server;
    const addr = server.address() as AddressInfo;
    return { host: addr.address, port: addr.port, protocol: tlsCert !== '' ? 'https' : 'http' };
  }

  /** Stop accepting and close every connection (live streams included). */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (!PUBLIC_PATHS.has(path) && !this.#auth.check(req, url)) {
        throw new HttpError(401, 'unauthorized', 'credentials required', { 'www-authenticate': this.#auth.challenge });
      }
      const match = this.#router.match(req.method ?? 'GET', path);
      if (match.kind === 'none') throw new HttpError(404, 'not_found', `no route for ${path}`);
      if (match.kind === 'method') {
        throw new HttpError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}`, { allow: match.allowed.join(', ') });
      }
      await match.handler({ req, res, url, params: match.params });
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        sendError(res, err);
        return;
      }
      this.#ctx.broker.log.error({ err, method: req.method, url: req.url }, 'http request failed');
      sendError(res, new HttpError(500, 'internal_error', 'internal error'));
    }
  }
}
