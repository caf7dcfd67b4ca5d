/**
 * GET /healthz: the process answers (liveness). GET /readyz: every configured
 * listener is bound, the broker is not shutting down, and every readiness
 * check passes (storage open, ...); 503 with the failing checks otherwise.
 * Both are open without credentials, for load balancers and orchestrators.
 */
import type { HttpContext } from './context.js';
import { sendJson } from './respond.js';
import type { Router } from './router.js';

export function registerHealthRoutes(router: Router, ctx: HttpContext): void {
  router.get('/healthz', ({ res }) => sendJson(res, 200, { status: 'ok' }));

  router.get('/readyz', async ({ res }) => {
    const broker = ctx.broker;
    const checks: Array<{ name: string; ok: boolean }> = [
      { name: 'listeners', ok: broker.addresses.length >= broker.config.listeners.length },
      { name: 'running', ok: !broker.core.closing },
    ];
    for (const c of ctx.options.readiness ?? []) {
      let ok = false;
      try {
        ok = (await c.check()) === true;
      } catch {
        ok = false;
      }
      checks.push({ name: c.name, ok });
    }
    const ready = checks.every((c) => c.ok);
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks });
  });
}
