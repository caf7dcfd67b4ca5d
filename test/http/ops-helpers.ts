/**
 * Starts a real Tern broker (port 0, memory storage, silent logs) plus its
 * operations module (HTTP on port 0), both closed in `t.after`, and a few
 * helpers to call the HTTP API.
 */
import type { TestContext } from 'node:test';
import { createBroker, type Broker } from '../../src/broker/broker.js';
import type { TernConfigInput } from '../../src/config/schema.js';
import type { Operations, OperationsOptions } from '../../src/ops/index.js';

export interface OpsFixture {
  broker: Broker;
  ops: Operations;
  /** mqtt://127.0.0.1:PORT */
  mqttUrl: string;
  /** http://127.0.0.1:PORT (no trailing slash) */
  base: string;
}

export async function startOps(t: TestContext, config: TernConfigInput = {}, options: OperationsOptions = {}): Promise<OpsFixture> {
  const broker = createBroker({
    ...config,
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'memory', ...config.storage },
    log: { level: 'silent', ...config.log },
    http: { enabled: true, port: 0, ...config.http },
    sys: { interval: 0, ...config.sys },
    operations: { processMetrics: false, ...options },
  });
  const [address] = await broker.listen();
  t.after(() => broker.close());
  const ops = broker.operations!;
  const scheme = broker.config.http.tlsCert !== '' ? 'https' : 'http';
  return {
    broker,
    ops,
    mqttUrl: `mqtt://127.0.0.1:${address!.port}`,
    base: ops.address !== undefined ? `${scheme}://127.0.0.1:${ops.address.port}` : '',
  };
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** fetch + JSON, with `body` sent as application/json when given. */
export async function call<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(base + path, {
    method,
    headers: body !== undefined ? { 'content-type': 'application/json', ...headers } : headers,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text === '' ? undefined : JSON.parse(text)) as T };
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function eventually<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 3000): Promise<Exclude<T, undefined | null | false>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const last = await fn();
    if (last) return last as Exclude<T, undefined | null | false>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
