/**
 * Connect/disconnect churn against a broker child process: 1,000 client
 * slots, each connecting, subscribing, publishing a QoS 1 message and
 * leaving, over and over, for CHURN_SECONDS (default 15; minutes under
 * `npm run soak` or with CHURN_SECONDS=300). The mix covers what holds
 * state: clean 3.1.1 sessions, v5 sessions that expire 2 s after
 * disconnecting, 3.1.1 persistent sessions reused by the same client id,
 * and v5 clients that drop their socket so their will goes out.
 *
 * Leak check: a short warm-up run first (the persistent sessions then exist
 * and the broker's tables have grown), a reading, the long run, a reading
 * once everyone left and the expiring sessions ended. File descriptors
 * (/proc/<pid>/fd), live heap after a full GC and active timers and sockets
 * (inspector) must be back at the warm-up reading.
 */
import assert from 'node:assert/strict';
import { setPriority } from 'node:os';
import { test } from 'node:test';
import { BrokerProcess } from '../helpers/broker-process.js';
import { Inspector, type HeapReading } from './helpers/inspector.js';
import { accepted, LoadClient, loopbackSource } from './helpers/load-client.js';
import { fdCount, mib, MiB } from './helpers/proc.js';

// A heavy load: this process and the broker it starts (which inherits it) yield to other test files.
setPriority(10);

const SLOTS = 1000;
const CHURN_MS = Number(process.env['CHURN_SECONDS'] ?? 15) * 1000;
const WARMUP_MS = 3000;
/** v5 session expiry of the expiring kind, seconds. */
const EXPIRY = 2;

interface Counts {
  cycles: number;
  failures: number;
  firstError: string;
}

/** One connect - subscribe - publish - leave cycle of slot `i`, kind by cycle number. */
async function cycle(port: number, i: number, n: number, counts: Counts): Promise<void> {
  const kind = n % 4;
  const base = { port, localAddress: loopbackSource(i), timeoutMs: 20_000 };
  const opts =
    kind === 0
      ? { ...base, clientId: `churn-clean-${i}-${n}`, version: 4 as const }
      : kind === 1
        ? { ...base, clientId: `churn-expiring-${i}`, version: 5 as const, clean: false, sessionExpiry: EXPIRY }
        : kind === 2
          ? { ...base, clientId: `churn-persistent-${i}`, version: 4 as const, clean: false }
          : { ...base, clientId: `churn-will-${i}-${n}`, version: 5 as const, will: { topic: `churn/will/${i % 10}`, payload: 'gone', qos: 1 } };
  let client: LoadClient | undefined;
  try {
    client = await LoadClient.connect(opts);
    // QoS 0 subscriptions: an offline persistent session queues nothing, so the state per session stays flat.
    await client.subscribe([{ filter: `churn/${i % 10}/#`, qos: 0 }]);
    const code = await client.publishAcked(`churn/${(i + 1) % 10}/x`, `m-${i}-${n}`, 1);
    if (!accepted(code)) throw new Error(`publish answered 0x${code.toString(16)}`);
    if (kind === 3) {
      client.destroy();
      await client.closed;
    } else await client.end();
    counts.cycles++;
  } catch (err) {
    client?.destroy();
    counts.failures++;
    counts.firstError ||= String(err);
  }
}

/**
 * Every slot cycles for `ms`, its kinds in turn from `first(i)`, and at
 * least `minCycles` times.
 */
async function churn(port: number, ms: number, first: (i: number) => number, minCycles = 0): Promise<Counts> {
  const counts: Counts = { cycles: 0, failures: 0, firstError: '' };
  const until = performance.now() + ms;
  await Promise.all(
    Array.from({ length: SLOTS }, async (_, i) => {
      const n0 = first(i);
      for (let n = n0; performance.now() < until || n - n0 < minCycles; n++) await cycle(port, i, n, counts);
    }),
  );
  return counts;
}

function describe(fds: number, r: HeapReading): string {
  const res = Object.entries(r.resources)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${fds} fds, heap ${mib(r.heapUsed)}, buffers ${mib(r.arrayBuffers)}, rss ${mib(r.rss)}; ${res}`;
}

async function settled(broker: BrokerProcess, inspector: Inspector, fdTarget: number): Promise<{ fds: number; reading: HeapReading }> {
  const pid = broker.pid!;
  const deadline = Date.now() + 15_000;
  while (fdCount(pid) > fdTarget && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // The expiring sessions end EXPIRY s after their last disconnect.
  await new Promise((r) => setTimeout(r, EXPIRY * 1000 + 500));
  return { fds: fdCount(pid), reading: await inspector.reading() };
}

test(`connection churn: ${SLOTS} clients connecting and leaving for ${CHURN_MS / 1000} s leave no fds, heap or timers behind`, { timeout: CHURN_MS + 55_000 }, async (t) => {
  const broker = await BrokerProcess.start(t, { backend: 'memory', nodeArgs: ['--inspect=127.0.0.1:0'] });
  const pid = broker.pid!;
  const inspector = await Inspector.attach(() => broker.output());
  t.after(() => inspector.close());
  const fds0 = fdCount(pid);

  // Each slot starts with its persistent session (kind 2), the state that stays; then the other kinds.
  const warm = await churn(broker.port, WARMUP_MS, () => 2, 1);
  const a = await settled(broker, inspector, fds0);
  t.diagnostic(`warm-up: ${warm.cycles} cycles, ${warm.failures} failed; then ${describe(a.fds, a.reading)}`);

  const t0 = performance.now();
  const run = await churn(broker.port, CHURN_MS, (i) => i);
  const seconds = (performance.now() - t0) / 1000;
  const b = await settled(broker, inspector, a.fds);
  t.diagnostic(`churn: ${run.cycles} cycles in ${seconds.toFixed(1)} s (${(run.cycles / seconds).toFixed(0)} connect-publish-leave cycles/s), ${run.failures} failed`);
  t.diagnostic(`after: ${describe(b.fds, b.reading)}`);

  assert.equal(run.failures + warm.failures, 0, `every cycle completes (${run.firstError || warm.firstError})`);
  assert.ok(run.cycles >= SLOTS, `the churn ran (${run.cycles} cycles)`);
  assert.ok(b.fds <= a.fds, `file descriptors: ${a.fds} after the warm-up, ${b.fds} after the churn`);
  for (const kind of ['Timeout', 'TCPSocketWrap', 'Immediate'] as const) {
    const before = a.reading.resources[kind] ?? 0;
    const after = b.reading.resources[kind] ?? 0;
    assert.ok(after <= before + 2, `${kind}: ${before} after the warm-up, ${after} after the churn`);
  }
  const growth = b.reading.heapUsed + b.reading.arrayBuffers - (a.reading.heapUsed + a.reading.arrayBuffers);
  t.diagnostic(`live heap + buffers: ${growth >= 0 ? '+' : ''}${mib(growth)} over ${run.cycles} cycles`);
  assert.ok(growth < 4 * MiB, `heap grew by ${mib(growth)} over the churn`);
  await inspector.close();
  assert.equal(await broker.stop(), 0);
});
