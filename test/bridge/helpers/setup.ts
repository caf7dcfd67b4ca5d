/**
 * Scenario setup shared by the bridge integration tests: brokers, a fault
 * proxy in front of the remote, a collector at the remote, a temp cache dir,
 * and bridge options with quick reconnects; everything is torn down in t.after.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { createBridge, type Bridge, type BridgeOptions } from '../../../src/bridge/bridge.js';
import { startMosquitto, startTern, type TestBroker } from './brokers.js';
import { FaultProxy } from './fault-proxy.js';
import { Collector } from './traffic.js';

export const STATE_TOPIC = 'tern/bridge/edge1/state';

export interface Scenario {
  local: TestBroker;
  remote: TestBroker;
  proxy: FaultProxy;
  collector: Collector;
  dir: string;
  /** Bridge options for this scenario (remote via the proxy); `extra` is merged in. */
  options(extra?: Partial<BridgeOptions>): BridgeOptions;
  /** Create a bridge closed in t.after. */
  bridge(extra?: Partial<BridgeOptions>): Bridge;
}

export async function scenario(
  t: TestContext,
  kinds: { local?: 'tern' | 'mosquitto'; remote?: 'tern' | 'mosquitto'; persistent?: boolean } = {},
): Promise<Scenario> {
  const local = kinds.local === 'mosquitto' ? await startMosquitto({ persistent: kinds.persistent ?? false }) : await startTern();
  t.after(() => local.close());
  const remote = kinds.remote === 'tern' ? await startTern() : await startMosquitto({ persistent: kinds.persistent ?? false });
  t.after(() => remote.close());
  const proxy = await FaultProxy.start(remote.host, remote.port);
  t.after(() => proxy.close());
  const collector = new Collector(remote, 'devices/#');
  await collector.connect(STATE_TOPIC);
  t.after(() => collector.close());
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const options = (extra: Partial<BridgeOptions> = {}): BridgeOptions => ({
    name: 'edge1',
    ...extra,
    local: { host: local.host, port: local.port, reconnect: { minDelayMs: 50, maxDelayMs: 500 }, ...extra.local },
    remote: {
      host: '127.0.0.1',
      port: proxy.port,
      keepalive: 2,
      ackTimeoutMs: 2000,
      connectTimeoutMs: 2000,
      reconnect: { minDelayMs: 50, maxDelayMs: 500 },
      ...extra.remote,
    },
    cache: { dir, durability: 'normal', ...extra.cache },
    forward: extra.forward ?? [{ local: 'sensors/#', remotePrefix: 'devices/edge1/', qos: 1 }],
  });
  const made: Bridge[] = [];
  t.after(async () => {
    for (const b of made) await b.close();
  });
  return {
    local,
    remote,
    proxy,
    collector,
    dir,
    options,
    bridge: (extra) => {
      const b = createBridge(options(extra));
      made.push(b);
      return b;
    },
  };
}

/** Resolve when `emitter` emits `event` (bounded). */
export function once<T extends unknown[]>(emitter: { once(event: string, fn: (...args: T) => void): unknown }, event: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, (...args: T) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}
