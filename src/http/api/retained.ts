/**
 * /api/v1/retained (list by filter, delete one) and /api/v1/topics (one
 * level of the retained-topic tree, for browsing).
 */
import type { Message } from '../../broker/message.js';
import { isValidTopicFilter, isValidTopicName } from '../../broker/topic.js';
import { deleteRetained, matchRetained } from '../../ops/broker-access.js';
import { encodePayload } from '../../ops/message-record.js';
import type { HttpContext } from '../context.js';
import { badRequest, notFound, sendJson } from '../respond.js';
import type { Router } from '../router.js';
import { page, paging } from './query.js';

/** Payloads longer than this are cut in listings (`truncated: true`). */
const MAX_PAYLOAD_PREVIEW = 64 * 1024;

export function retainedView(message: Message) {
  const full = message.payload;
  const truncated = full.length > MAX_PAYLOAD_PREVIEW;
  const { payload, payload_encoding } = encodePayload(truncated ? full.subarray(0, MAX_PAYLOAD_PREVIEW) : full);
  const p = message.properties;
  return {
    topic: message.topic,
    qos: message.qos,
    bytes: full.length,
    payload,
    payloadEncoding: payload_encoding,
    truncated,
    contentType: p?.contentType ?? null,
    expiresAt: message.expiresAt !== undefined ? new Date(message.expiresAt).toISOString() : null,
  };
}

export function registerRetainedRoutes(router: Router, ctx: HttpContext): void {
  // Read at use time: limits change on a config reload.
  const maxLevels = (): number => ctx.broker.config.limits.maxTopicLevels;

  router.get('/api/v1/retained', async ({ res, url }) => {
    const filter = url.searchParams.get('filter') ?? '#';
    if (!isValidTopicFilter(filter, maxLevels()) || filter.startsWith('$share/')) throw badRequest(`invalid topic filter ${JSON.stringify(filter)}`);
    const messages = await matchRetained(ctx.broker, filter);
    const p = paging(url);
    const view = page(messages, p);
    sendJson(res, 200, { ...view, items: view.items.map(retainedView) });
  });

  router.delete('/api/v1/retained', async ({ res, url }) => {
    const topic = url.searchParams.get('topic');
    if (topic === null || !isValidTopicName(topic, maxLevels())) throw badRequest('topic must be a topic name (no wildcards)');
    if (!(await deleteRetained(ctx.broker, topic))) throw notFound(`no retained message on ${JSON.stringify(topic)}`);
    sendJson(res, 200, { topic, deleted: true });
  });

  router.get('/api/v1/topics', async ({ res, url }) => {
    const prefix = url.searchParams.get('prefix') ?? '';
    if (prefix !== '' && !isValidTopicName(prefix, maxLevels())) throw badRequest('prefix must be a topic name (no wildcards)');
    const messages =
      prefix === ''
        ? [...(await matchRetained(ctx.broker, '#')), ...(await matchRetained(ctx.broker, '$SYS/#'))]
        : await matchRetained(ctx.broker, `${prefix}/#`);
    const depth = prefix === '' ? 0 : prefix.split('/').length;
    let here: Message | undefined;
    const children = new Map<string, { name: string; path: string; retained: boolean; topics: number }>();
    for (const m of messages) {
      if (m.topic === prefix) {
        here = m;
        continue;
      }
      const levels = m.topic.split('/');
      const name = levels[depth]!;
      const path = levels.slice(0, depth + 1).join('/');
      let child = children.get(name);
      if (child === undefined) {
        child = { name, path, retained: false, topics: 0 };
        children.set(name, child);
      }
      child.topics++;
      if (levels.length === depth + 1) child.retained = true;
    }
    const sorted = [...children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    sendJson(res, 200, { prefix, message: here !== undefined ? retainedView(here) : null, children: sorted });
  });
}
