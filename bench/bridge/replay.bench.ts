/**
 * Bridge replay benchmarks, a Mosquitto remote on loopback; one JSON line per result.
 *
 *   node --import tsx bench/bridge/replay.bench.ts [--quick]
 *
 * 1. ready-and-replaying: 500k cached (100 B payloads); time from start() to
 *    ready and to the first remote PUBACK (target: both < 2 s).
 * 2. replay-qos1: the same 500k drained at QoS 1, window 100 (target >= 50k msg/s).
 * 3. rss-1m-cached: RSS of a bridge holding 1M cached messages, remote down (target < 150 MB).
 * 4. drain-1m-with-live: that 1M backlog drained while a publisher adds 1k msg/s
 *    live at the local broker (target < 60 s), order kept by the pipeline.
 * --quick divides the sizes by 5.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, startMosquitto } from '../../test/bridge/helpers/brokers.js';
import { emit, JsonChild, quick } from './common.js';

const SCALE = quick ? 5 : 1;
const N_READY = 500_000 / SCALE;
const N_BIG = 1_000_000 / SCALE;

const dir = mkdtempSync(join(tmpdir(), 'tern-bench-bridge-'));
const remote = await startMosquitto({ extra: ['max_inflight_messages 1000'] });
const local = await startMosquitto({ extra: ['max_inflight_messages 1000'] });

function bridgeOptions(name: string, remotePort: number): string {
  return JSON.stringify({
    name,
    local: { host: local.host, port: local.port },
    remote: { host: remote.host, port: remotePort, reconnect: { minDelayMs: 100, maxDelayMs: 500 } },
    cache: { dir, durability: 'full', maxMessages: 0, maxBytes: 0 },
    forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }],
  });
}

async function fill(name: string, n: number): Promise<number> {
  const t0 = performance.now();
  const child = new JsonChild('fill-cache.ts', [join(dir, `bridge-${name}.db`), String(n)]);
  await child.wait((e) => e['filled'] !== undefined, 300_000);
  await child.exited();
  return Math.round(performance.now() - t0);
}

try {
  // 1 + 2: ready within 2 s with 500k cached, then the replay rate.
  const fillMs = await fill('r', N_READY);
  const b = new JsonChild('bridge-child.ts', [bridgeOptions('r', remote.port)]);
  const ready = await b.wait((e) => e.event === 'ready', 60_000);
  const first = await b.wait((e) => e.event === 'firstAck', 60_000);
  emit({ name: 'ready-and-replaying', cached: N_READY, readyMs: ready['startMs'], firstAckMs: first['sinceStartMs'], targetMs: 2000, fillMs });
  const t0 = performance.now();
  const drained = await b.wait((e) => e.event === 'drained', 300_000);
  const seconds = (performance.now() - t0) / 1000;
  const firstStats = b.events.find((e) => e.event === 'stats' && (e['forwarded'] as number) > 0);
  const startT = firstStats?.t ?? first.t;
  const rate = Math.round(N_READY / ((drained.t - startT) / 1000));
  emit({ name: 'replay-qos1', messages: N_READY, window: 100, msgPerSec: rate, seconds: Number(seconds.toFixed(2)), target: 50_000 });
  await b.stop();

  // 3: RSS with 1M cached (remote unreachable).
  await fill('big', N_BIG);
  const closedPort = await freePort();
  const idle = new JsonChild('bridge-child.ts', [bridgeOptions('big', closedPort)]);
  await idle.wait((e) => e.event === 'ready', 60_000);
  await new Promise((r) => setTimeout(r, 3000));
  const rss = Math.max(...idle.events.filter((e) => e.event === 'stats').map((e) => e['rss'] as number));
  const backlog = idle.events.filter((e) => e.event === 'stats').at(-1)?.['backlog'];
  emit({ name: 'rss-1m-cached', cached: backlog, rssMB: Math.round(rss / 1048576), targetMB: 150 });
  await idle.stop();

  // 4: drain 1M with 1k msg/s live.
  const live = new JsonChild('bridge-child.ts', [bridgeOptions('big', remote.port)]);
  await live.wait((e) => e.event === 'ready', 60_000);
  const pub = new JsonChild('publisher-child.ts', [local.host, String(local.port), String(120_000), '1000']);
  const d0 = performance.now();
  await live.wait((e) => e.event === 'drained', 180_000);
  const drainS = (performance.now() - d0) / 1000;
  const stats = live.events.filter((e) => e.event === 'stats');
  const maxRss = Math.max(...stats.map((e) => e['rss'] as number));
  emit({
    name: 'drain-1m-with-live',
    cached: N_BIG,
    liveRate: 1000,
    seconds: Number(drainS.toFixed(1)),
    liveReceived: stats.at(-1)?.['received'],
    rssMB: Math.round(maxRss / 1048576),
    targetSeconds: 60,
  });
  pub.proc.kill('SIGKILL');
  await live.stop();
} finally {
  await remote.close();
  await local.close();
  rmSync(dir, { recursive: true, force: true });
}
