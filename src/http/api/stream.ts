/**
 * GET /api/v1/stream?filter=a/%23&filter=b/+ : the live message view as
 * Server-Sent Events. Each matching message is one `message` event whose
 * data is a JSON MessageRecord (docs/api.md). A client that reads too slowly
 * loses messages rather than making the broker buffer for it: past
 * MAX_BUFFERED bytes waiting in the socket, messages are skipped and a
 * `dropped` event tells how many. A comment line every 15 s keeps proxies
 * from closing an idle stream.
 */
import type { Message } from '../../broker/message.js';
import { toRecord } from '../../ops/message-record.js';
import type { HttpContext } from '../context.js';
import { badRequest, HttpError } from '../respond.js';
import type { Router } from '../router.js';

const MAX_BUFFERED = 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export function registerStreamRoutes(router: Router, ctx: HttpContext): void {
  router.get('/api/v1/stream', ({ req, res, url }) => {
    const filters = url.searchParams.getAll('filter').filter((f) => f !== '');
    if (filters.length === 0) filters.push('#');
    for (const f of filters) if (!ctx.tap.isValidFilter(f)) throw badRequest(`invalid topic filter ${JSON.stringify(f)}`);
    if (ctx.streams >= ctx.config.maxStreams) {
      throw new HttpError(503, 'too_many_streams', `at most ${ctx.config.maxStreams} live streams may be open`);
    }
    ctx.streams++;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
    });
    res.write(`retry: 2000\nevent: ready\ndata: ${JSON.stringify({ filters })}\n\n`);
    let skipped = 0;
    const remove = ctx.tap.add(filters, {
      onMessage(message: Message, clientId: string | undefined) {
        if (res.writableLength > MAX_BUFFERED) {
          skipped++;
          return;
        }
        if (skipped > 0) {
          res.write(`event: dropped\ndata: ${JSON.stringify({ count: skipped })}\n\n`);
          skipped = 0;
        }
        res.write(`event: message\ndata: ${JSON.stringify(toRecord(message, clientId))}\n\n`);
      },
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      remove();
      ctx.streams--;
    };
    req.on('close', close);
    res.on('close', close);
  });
}
