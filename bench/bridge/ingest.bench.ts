/**
 * Durable ingest while the remote is unreachable; one JSON line per result.
 *
 *   node --import tsx bench/bridge/ingest.bench.ts [--quick]
 *
 * 1. pipeline-ingest: Pipeline.ingest() + group commit alone (no network),
 *    1000 messages per event-loop turn, durability full and normal: the
 *    cache's ceiling.
 * 2. end-to-end-ingest: a publisher process -> Mosquitto (local, max 1000 in
 *    flight to the bridge) -> the bridge process (v5, manual acks after each
 *    group commit) -> the cache; remote down. Target >= 20k msg/s (full).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BridgeCache } from '../../src/bridge/cache.js';
import type { LocalSide } from '../../src/bridge/local-side.js';
import { Pipeline } from '../../src/bridge/pipeline.js';
import { freePort, startMosquitto } from '../../test/bridge/helpers/brokers.js';
import { emit, JsonChild, quick } from './common.js';

const N = quick ? 50_000 : 200_000;
const dir = mkdtempSync(join(tmpdir(), 'tern-bench-bridge-ingest-'));

async function pipelineIngest(durability: 'full' | 'normal'): Promise<void> {
  const cache = BridgeCache.open(join(dir, `pipe-${durability}.db`), { durability });
  let acks = 0;
  const local: LocalSide = {
    description: 'bench',
    connected: true,
    protocolLevel: 5,
    start: () => Promise.resolve(),
    ack: () => {
      acks++;
    },
    publish: () => true,
    close: () => Promise.resolve(),
  };
  const p = new Pipeline(
    cache,
    {
      limits: { maxMessages: 0, maxBytes: 0, overflow: 'drop_oldest' },
      maxMessageBytes: 1 << 20,
      batchSize: 1000,
      replayIntervalMs: 0,
      commitIntervalMs: 0,
      cacheQos0: false,
      ttlMs: 0,
      window: 100,
    },
    { local, dropped: () => undefined, drained: () => undefined, cacheReset: () => undefined, error: (e) => console.error(e) },
  );
  const payload = Buffer.alloc(100, 0x61);
  const t0 = performance.now();
  for (let i = 0; i < N; i += 1000) {
    for (let j = 0; j < 1000; j++) p.ingest(`devices/edge1/sensors/${j % 100}`, payload, 1, false, undefined, (j + 1) | (1 << 16), 1);
    await new Promise((r) => setImmediate(r));
  }
  p.flush();
  const s = (performance.now() - t0) / 1000;
  emit({ name: 'pipeline-ingest', durability, messages: N, acked: acks, msgPerSec: Math.round(N / s) });
  p.close();
  cache.close();
}

async function endToEnd(durability: 'full' | 'normal'): Promise<void> {
  const local = await startMosquitto({ extra: ['max_inflight_messages 1000'] });
  try {
    const name = `e2e-${durability}`;
    const bridge = new JsonChild('bridge-child.ts', [
      JSON.stringify({
        name,
        local: { host: local.host, port: local.port, receiveMaximum: 1000 },
        remote: { host: '127.0.0.1', port: await freePort() },
        cache: { dir, durability, maxMessages: 0, maxBytes: 0 },
        forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }],
      }),
    ]);
    await bridge.wait((e) => e.event === 'ready', 30_000);
    await new Promise((r) => setTimeout(r, 500)); // subscribed at the local broker
    const pub = new JsonChild('publisher-child.ts', [local.host, String(local.port), String(N)]);
    const full = await bridge.wait((e) => e.event === 'stats' && (e['backlog'] as number) >= N, 300_000);
    const firstIn = bridge.events.find((e) => e.event === 'stats' && (e['received'] as number) > 0)!;
    // Stats come every 250 ms: interpolate the start from the first sample's count.
    const lastEmpty = bridge.events.filter((e) => e.event === 'stats' && (e['received'] as number) === 0).at(-1) ?? firstIn;
    const seconds = (full.t - lastEmpty.t) / 1000;
    await pub.exited();
    emit({ name: 'end-to-end-ingest', durability, messages: N, msgPerSec: Math.round(N / seconds), seconds: Number(seconds.toFixed(2)), target: 20_000 });
    await bridge.stop();
  } finally {
    await local.close();
  }
}

try {
  await pipelineIngest('full');
  await pipelineIngest('normal');
  await endToEnd('full');
  await endToEnd('normal');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
