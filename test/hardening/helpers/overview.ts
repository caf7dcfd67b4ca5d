/**
 * The broker's own figures through its admin API (`[http]` on a loopback
 * port, no token): GET /api/v1/overview. Used by the hardening tests to
 * count drops by reason and the sessions and connections left after a run.
 */
import { stablePort } from '../../helpers/broker-process.js';

export interface Overview {
  connections: number;
  connectionsTotal: number;
  sessions: { total: number; online: number; offline: number };
  subscriptions: number;
  messages: { received: number; sent: number; dropped: Record<string, number> };
  inflight: number;
  queued: number;
}

/** A `[http]` section on a free port; returns the TOML and the port. */
export async function httpToml(): Promise<{ toml: string; port: number }> {
  const port = await stablePort();
  return { port, toml: `[http]\nenabled = true\nhost = "127.0.0.1"\nport = ${port}\ndashboard = false\n` };
}

export async function overview(httpPort: number): Promise<Overview> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/api/v1/overview`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`overview: HTTP ${res.status}`);
  return (await res.json()) as Overview;
}
