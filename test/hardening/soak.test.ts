/**
 * The soak run (test/hardening/helpers/soak.ts) at CI size: SOAK_SECONDS
 * (default 20) of mixed QoS, retained messages, wills, persistent sessions
 * going offline and back, and client churn against a broker child process.
 * RSS and heap must be flat after the warm-up, the broker's log free of
 * errors, and every acknowledged message delivered. `npm run soak` runs the
 * same for minutes (`--minutes`).
 */
import assert from 'node:assert/strict';
import { setPriority } from 'node:os';
import { test } from 'node:test';
import { runSoak } from './helpers/soak.js';

// A heavy load: this process and the broker it starts (which inherits it) yield to other test files.
setPriority(10);

const SECONDS = Number(process.env['SOAK_SECONDS'] ?? 20);

test(`soak: ${SECONDS} s of mixed load; memory flat after warm-up, no errors logged, every acknowledged message delivered`, { timeout: SECONDS * 1000 + 55_000 }, async (t) => {
  const result = await runSoak(t, { durationMs: SECONDS * 1000, sampleMs: 2000, report: (line) => t.diagnostic(line) });
  assert.deepEqual(result.problems, []);
});
