/**
 * A bridge in its own process for the benchmarks: `bridge-child.ts JSON`
 * (createBridge options). Prints JSON lines: `ready` (ms since process
 * start), `firstAck`, `drained`, and `stats` every 250 ms (with RSS).
 * Stops cleanly on SIGTERM.
 */
import { createBridge, type BridgeOptions } from '../../src/bridge/bridge.js';

const t0 = performance.timeOrigin;
const options = JSON.parse(process.argv[2] ?? '{}') as BridgeOptions;
const bridge = createBridge(options);
const out = (o: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify({ t: Math.round(performance.timeOrigin + performance.now() - t0), ...o })}\n`);
};
const startAt = performance.now();
bridge.on('drained', () => out({ event: 'drained' }));
bridge.on('error', (err) => out({ event: 'error', message: err.message }));
await bridge.start();
out({ event: 'ready', startMs: Math.round(performance.now() - startAt) });
let first = false;
const timer = setInterval(() => {
  const s = bridge.stats();
  if (!first && s.forwarded > 0) {
    first = true;
    out({ event: 'firstAck', sinceStartMs: Math.round(performance.now() - startAt) });
  }
  out({ event: 'stats', rss: process.memoryUsage().rss, backlog: s.backlog.messages, forwarded: s.forwarded, received: s.received, rate: s.replayRate, remote: s.remote.state });
}, 250);
process.once('SIGTERM', () => {
  clearInterval(timer);
  void bridge.close().then(() => process.exit(0));
});
