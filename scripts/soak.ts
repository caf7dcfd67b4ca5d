/**
 * `npm run soak [-- --minutes N] [--sample-seconds S] [--rate R]`: the soak
 * run of test/hardening/helpers/soak.ts for N minutes (default 2; hours by
 * flag) against a broker child process. Prints RSS, heap and fds over time
 * and a verdict; exits 1 when RSS or heap kept growing after the warm-up,
 * the broker logged errors, or an acknowledged message, a will or a
 * retained message went missing.
 */
import { parseArgs } from 'node:util';
import { runSoak } from '../test/hardening/helpers/soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '2' },
    'sample-seconds': { type: 'string' },
    rate: { type: 'string', default: '300' },
  },
});
const minutes = Number(values.minutes);
const rate = Number(values.rate);
if (!(minutes > 0) || !(rate > 0)) {
  process.stderr.write('usage: npm run soak -- [--minutes N] [--sample-seconds S] [--rate QOS1_MESSAGES_PER_SECOND]\n');
  process.exit(2);
}
const durationMs = minutes * 60_000;
// About 60 samples a run, at least one every 2 s and at most one every minute.
const sampleMs = values['sample-seconds'] !== undefined ? Number(values['sample-seconds']) * 1000 : Math.min(60_000, Math.max(2000, durationMs / 60));

const cleanups: Array<() => unknown> = [];
const hooks = { after: (fn: () => unknown) => void cleanups.push(fn) };
process.stdout.write(`soak: ${minutes} min, ${rate} QoS 1 messages/s per publisher, a sample every ${sampleMs / 1000} s\n`);
let failed = true;
try {
  const result = await runSoak(hooks, { durationMs, sampleMs, rate, report: (line) => process.stdout.write(`${line}\n`) });
  failed = result.problems.length > 0;
  for (const p of result.problems) process.stdout.write(`FAIL: ${p}\n`);
  if (!failed) process.stdout.write('soak passed\n');
} catch (err) {
  process.stderr.write(`soak failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
} finally {
  for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => undefined);
}
process.exit(failed ? 1 : 0);
