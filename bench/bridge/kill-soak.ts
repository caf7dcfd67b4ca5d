/**
 * The kill scenario of test/integration/bridge-kill.test.ts, longer:
 *
 *   node --import tsx bench/bridge/kill-soak.ts [KILLS=20]
 *
 * `tern bridge` (a child process) is SIGKILLed KILLS times, alternately
 * mid-ingest (remote unreachable) and mid-replay, with a publisher running
 * throughout, then stopped with SIGTERM mid-replay and drained. Fails (exit 1)
 * unless every acknowledged message arrived, first deliveries in order.
 */
import { killRun } from '../../test/bridge/helpers/kill-run.js';
import { emit } from './common.js';

const kills = Number(process.argv[2] ?? 20);
const t0 = performance.now();
try {
  const r = await killRun(kills, (m) => process.stderr.write(`${m}\n`));
  emit({
    name: 'kill-soak',
    kills: r.kills,
    published: r.published,
    missing: r.missing.length,
    duplicates: r.duplicates,
    outOfOrder: r.outOfOrder,
    seconds: Math.round((performance.now() - t0) / 1000),
  });
} catch (err) {
  process.stderr.write(`kill soak failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
