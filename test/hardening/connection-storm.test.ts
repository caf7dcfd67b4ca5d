/**
 * Connection storms against a broker child process: 10,000 clients connect
 * at once (raw sockets sending CONNECT, spread over 16 loopback source
 * addresses), STORM_ROUNDS times (1 in `npm test`). After each storm every client leaves (half with
 * DISCONNECT, half by dropping the socket) and the broker must be back where
 * it was: its file descriptors (/proc/<pid>/fd), its live heap after a full
 * GC and its timers and sockets (process.getActiveResourcesInfo()), both
 * read through the V8 inspector.
 *
 * Against the very start the live heap may grow by 4 MiB at most (400
 * bytes per client of a 10k storm; measured well under 1 MiB). With more
 * rounds the first one also warms the broker up (code compiled, tables
 * grown), and from the end of the first to the end of the last the bound is
 * tighter: 200 bytes per client. STORM_CLIENTS changes the size (default
 * 10000; the broker and this process each need that many descriptors: see
 * `ulimit -n`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { test, type TestContext } from 'node:test';
import { softFdLimit } from '../../src/broker/fd-budget.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { Inspector, type HeapReading } from './helpers/inspector.js';
import { LoadClient, loopbackSource } from './helpers/load-client.js';
import { fdCount, mib, MiB, rssBytes } from './helpers/proc.js';

const WANTED = Number(process.env['STORM_CLIENTS'] ?? 10_000);
/**
 * This process holds a descriptor per client, and so does the broker child
 * (which inherits this process's limit): raise the soft RLIMIT_NOFILE to the
 * hard one if needed (no privilege needed), and if even that is too low, storm
 * with as many clients as fit (said in a diagnostic).
 */
function fitClients(): { clients: number; limit: number } {
  const soft = (): number => softFdLimit(readFileSync('/proc/self/limits', 'utf8'));
  const hard = hardFdLimit(readFileSync('/proc/self/limits', 'utf8'));
  if (soft() < WANTED + 500 && hard > soft()) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${Number.isFinite(hard) ? hard : 'unlimited'}:`]);
    } catch {
      // Keep the limit there is.
    }
  }
  const limit = soft();
  return { clients: Math.min(WANTED, limit - 500), limit };
}

function hardFdLimit(limits: string): number {
  const m = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  return m === null || m[1] === 'unlimited' ? Infinity : Number(m[1]);
}

const { clients: CLIENTS, limit: FD_LIMIT } = fitClients();
const ROUNDS = Math.max(1, Number(process.env['STORM_ROUNDS'] ?? 1));
// A storm loads the whole machine: this process and the broker it starts (which inherits it) yield to other test files.
setPriority(10);

/** Waits until the broker's fd count is at most `target`; returns the last count. */
async function fdsSettle(pid: number, target: number, timeoutMs = 15_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = fdCount(pid);
  while (n > target && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    n = fdCount(pid);
  }
  return n;
}

interface StormResult {
  ms: number;
  connected: LoadClient[];
  /** Clients whose first attempt failed (and why, by reason), and those that never connected. */
  retried: number;
  reasons: Map<string, number>;
  failed: number;
}

/**
 * CLIENTS clients connect at once. One whose attempt fails tries again after
 * a second, up to 3 times, as a real client reconnects: on a loaded machine
 * the kernel's accept queue can overflow (connections reset) before the
 * broker takes them.
 */
async function storm(t: TestContext, port: number, round: number): Promise<StormResult> {
  const t0 = performance.now();
  const reasons = new Map<string, number>();
  let retried = 0;
  const one = async (i: number): Promise<LoadClient> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await LoadClient.connect({
          port,
          localAddress: loopbackSource(i),
          clientId: `storm-${round}-${i}`,
          version: i % 2 === 0 ? 4 : 5,
          keepalive: 60,
          timeoutMs: 30_000,
        });
      } catch (err) {
        if (attempt === 1) retried++;
        const reason = String(err).replace(/^.*?: /, '').replace(/storm-\d+-\d+: /, '');
        reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
        if (attempt === 3) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  };
  const results = await Promise.allSettled(Array.from({ length: CLIENTS }, (_, i) => one(i)));
  const ms = performance.now() - t0;
  const connected: LoadClient[] = [];
  let failed = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') connected.push(r.value);
    else failed++;
  }
  t.after(() => connected.forEach((c) => c.destroy()));
  return { ms, connected, retried, reasons, failed };
}

async function leaveAll(clients: LoadClient[]): Promise<void> {
  await Promise.all(
    clients.map((c, i) => {
      if (i % 2 === 0) return c.end();
      c.destroy();
      return c.closed;
    }),
  );
}

function describe(r: HeapReading): string {
  const res = Object.entries(r.resources)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `heap ${mib(r.heapUsed)}, buffers ${mib(r.arrayBuffers)}, rss ${mib(r.rss)}; ${res}`;
}

test(`connection storm: ${CLIENTS} clients at once (x${ROUNDS}) leave no fds, heap, timers or sockets behind`, { timeout: 60_000 * ROUNDS + 30_000 }, async (t) => {
  const broker = await BrokerProcess.start(t, { backend: 'memory', nodeArgs: ['--inspect=127.0.0.1:0'] });
  const pid = broker.pid!;
  const inspector = await Inspector.attach(() => broker.output());
  t.after(() => inspector.close());

  if (CLIENTS < WANTED) t.diagnostic(`RLIMIT_NOFILE is ${FD_LIMIT}: ${CLIENTS} clients instead of ${WANTED}`);
  const fds0 = fdCount(pid);
  const r0 = await inspector.reading();
  t.diagnostic(`start: ${fds0} fds; ${describe(r0)}`);

  const readings: HeapReading[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const s = await storm(t, broker.port, round);
    const fdsPeak = fdCount(pid);
    const rssPeak = rssBytes(pid);
    const reasons = [...s.reasons].map(([r, n]) => `${n} x ${r}`).join(', ');
    t.diagnostic(
      `storm ${round}: ${s.connected.length} of ${CLIENTS} connected in ${(s.ms / 1000).toFixed(1)} s; ` +
        `${s.retried} needed another attempt${s.retried > 0 ? ` (${reasons})` : ''}; broker at ${fdsPeak} fds, rss ${mib(rssPeak)}`,
    );
    assert.equal(s.failed, 0, `every client connects within 3 attempts (${reasons})`);
    assert.ok(s.retried <= CLIENTS / 10, `at most a tenth need another attempt (${s.retried})`);
    assert.ok(fdsPeak >= fds0 + CLIENTS, `the broker holds a descriptor per client (${fdsPeak})`);
    await Promise.all(s.connected.slice(0, 100).map((c) => c.ping()));

    await leaveAll(s.connected);
    const fds = await fdsSettle(pid, fds0);
    // Clean sessions end with their connections; give the broker a moment to finish closing.
    await new Promise((r) => setTimeout(r, 500));
    // A leak stays; work still finishing on a loaded machine (closes, timers, GC) does not:
    // keep the lowest of a few readings a second apart.
    let r = await inspector.reading();
    for (let i = 0; i < 4 && r.heapUsed + r.arrayBuffers - (r0.heapUsed + r0.arrayBuffers) > 2 * MiB; i++) {
      await new Promise((res) => setTimeout(res, 1000));
      const next = await inspector.reading();
      if (next.heapUsed + next.arrayBuffers < r.heapUsed + r.arrayBuffers) r = next;
    }
    readings.push(r);
    t.diagnostic(`after storm ${round}: ${fds} fds; ${describe(r)}`);
    assert.ok(fds <= fds0, `file descriptors back to ${fds0} (now ${fds})`);
  }
  const first = readings[0]!;
  const last = readings[readings.length - 1]!;
  for (const kind of ['Timeout', 'TCPSocketWrap', 'TCPServerWrap'] as const) {
    assert.ok((last.resources[kind] ?? 0) <= (r0.resources[kind] ?? 0) + 1, `${kind}: ${r0.resources[kind] ?? 0} at start, ${last.resources[kind] ?? 0} after`);
  }
  const live = (r: HeapReading): number => r.heapUsed + r.arrayBuffers;
  const total = live(last) - live(r0);
  const growth = live(last) - live(first);
  const sign = (n: number): string => `${n >= 0 ? '+' : ''}${mib(n)}`;
  t.diagnostic(`live heap + buffers: ${sign(total)} since start${ROUNDS > 1 ? `, ${sign(growth)} from the end of storm 1 to the end of storm ${ROUNDS}` : ''}`);
  assert.ok(total < Math.max(4 * MiB, CLIENTS * 400), `heap grew by ${mib(total)} since start`);
  // A leak of even 200 bytes per connection would be 2 MB per storm of 10k.
  if (ROUNDS > 1) assert.ok(growth < Math.max(2 * MiB, CLIENTS * 200 * (ROUNDS - 1)), `heap grew by ${mib(growth)} after the first storm`);
  await inspector.close();
  assert.equal(await broker.stop(), 0);
});
