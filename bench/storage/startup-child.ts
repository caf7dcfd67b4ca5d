/**
 * One start of a broker on an existing SQLite store, for startup.bench.ts:
 * prints one JSON line with the time of createBroker() + listen(), RSS and
 * V8 heap (after a full GC, with --expose-gc) before and after, and the time
 * of two retained lookups once started.
 *
 *   node --expose-gc --import tsx bench/storage/startup-child.ts DATA_DIR
 */
import { performance } from 'node:perf_hooks';
import { createBroker } from '../../src/broker/broker.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: startup-child.ts DATA_DIR');

const gc = (globalThis as { gc?: () => void }).gc ?? ((): void => {});
const mb = (n: number): number => Math.round((n / 1048576) * 10) / 10;

gc();
const before = process.memoryUsage();
const t0 = performance.now();
const broker = createBroker({
  listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
  storage: { backend: 'sqlite', path: dir },
  log: { level: 'silent' },
});
await broker.listen();
const listenMs = performance.now() - t0;
gc();
const after = process.memoryUsage();

const t1 = performance.now();
await broker.core.matchRetained('site/7/device/7/state');
const getRetainedMs = performance.now() - t1;
const t2 = performance.now();
const matched = (await broker.core.matchRetained('site/7/#')).length;
const matchRetainedMs = performance.now() - t2;

const sessions = broker.core.sessions.size;
await broker.close();
process.stdout.write(
  `${JSON.stringify({
    listenMs: Math.round(listenMs * 10) / 10,
    sessions,
    rssBeforeMB: mb(before.rss),
    rssAfterMB: mb(after.rss),
    heapBeforeMB: mb(before.heapUsed),
    heapAfterMB: mb(after.heapUsed),
    getRetainedMs: Math.round(getRetainedMs * 100) / 100,
    matchRetainedMs: Math.round(matchRetainedMs * 10) / 10,
    matched,
  })}\n`,
);
