/** /api/v1/subscriptions: the routing table, by filter text, client or matching topic. */
import { parseSharedFilter, topicMatches } from '../../broker/topic.js';
import type { HttpContext } from '../context.js';
import { sendJson } from '../respond.js';
import type { Router } from '../router.js';
import { page, paging } from './query.js';

export function registerSubscriptionRoutes(router: Router, ctx: HttpContext): void {
  router.get('/api/v1/subscriptions', ({ res, url }) => {
    const text = url.searchParams.get('filter') ?? '';
    const clientId = url.searchParams.get('clientId');
    const topic = url.searchParams.get('topic');
    const items: Array<{
      clientId: string;
      filter: string;
      qos: number;
      shareGroup: string | null;
      noLocal: boolean;
      retainAsPublished: boolean;
      retainHandling: number;
      subscriptionId: number | null;
    }> = [];
    for (const { filter, owner, entry } of ctx.broker.core.trie.entries()) {
      if (clientId !== null && owner !== clientId) continue;
      if (text !== '' && !filter.includes(text)) continue;
      const shared = parseSharedFilter(filter);
      if (topic !== null && !topicMatches(shared ? shared.filter : filter, topic)) continue;
      items.push({
        clientId: owner,
        filter,
        qos: entry.qos,
        shareGroup: shared ? shared.group : null,
        noLocal: entry.noLocal,
        retainAsPublished: entry.retainAsPublished,
        retainHandling: entry.retainHandling,
        subscriptionId: entry.subscriptionId ?? null,
      });
    }
    items.sort((a, b) => (a.filter < b.filter ? -1 : a.filter > b.filter ? 1 : a.clientId < b.clientId ? -1 : 1));
    sendJson(res, 200, page(items, paging(url)));
  });
}
