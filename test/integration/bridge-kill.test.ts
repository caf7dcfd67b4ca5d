/**
 * `tern bridge` as a child process, SIGKILLed five times mid-ingest and
 * mid-replay and stopped with SIGTERM mid-replay, with a publisher running
 * throughout: every message the local broker acknowledged reaches the
 * remote, first deliveries in publish order, duplicates bounded per kill,
 * and the state topic says `offline` after each death and `online` after
 * each start. (bench/bridge/kill-soak.ts runs the same with 20 kills.)
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { killRun } from '../bridge/helpers/kill-run.js';

it('loses no acknowledged message across 5 SIGKILLs (mid-ingest and mid-replay) and a SIGTERM', { timeout: 90_000 }, async () => {
  const result = await killRun(5);
  assert.equal(result.kills, 5);
  assert.equal(result.missing.length, 0);
  assert.ok(result.published > 1000);
});
