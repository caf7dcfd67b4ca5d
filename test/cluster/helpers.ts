/**
 * Cluster test helpers: in-process Tern nodes sharing one real redis-server
 * (each test uses its own key prefix, so tests share nothing).
 */
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { createBroker, type Broker } from '../../src/broker/broker.js';
import type { TernConfigInput } from '../../src/config/schema.js';

export interface Node {
  broker: Broker;
  url: string;
  port: number;
  id: string;
}

export function clusterPrefix(): string {
  return `t${randomBytes(4).toString('hex')}:`;
}

/** Start one node of the cluster named by `prefix` on `redisUrl`. */
export async function startNode(
  t: TestContext,
  redisUrl: string,
  prefix: string,
  id: string,
  extra: TernConfigInput = {},
): Promise<Node> {
  const broker = createBroker({
    ...extra,
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'redis', redisUrl, redisPrefix: prefix },
    cluster: { enabled: true, nodeId: id, heartbeatIntervalMs: 200, nodeTimeoutMs: 1000, ...extra.cluster },
    log: { level: 'silent', ...extra.log },
  });
  t.after(() => broker.close());
  const [address] = await broker.listen();
  return { broker, url: `mqtt://127.0.0.1:${address!.port}`, port: address!.port, id };
}

export async function startNodes(t: TestContext, redisUrl: string, count: number, extra: TernConfigInput = {}): Promise<Node[]> {
  const prefix = clusterPrefix();
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) nodes.push(await startNode(t, redisUrl, prefix, `n${i + 1}`, extra));
  return nodes;
}
