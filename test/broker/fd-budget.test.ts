/**
 * FdBudget: the broker refuses connections itself while fewer than its
 * reserve of file descriptors would be left (libuv would otherwise close
 * them silently at EMFILE), and says so once per run of refusals.
 * The end-to-end check with a real RLIMIT_NOFILE is test/hardening/fd-limit.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { FD_LOG_INTERVAL_MS, FdBudget, softFdLimit } from '../../src/broker/fd-budget.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

test('softFdLimit reads the soft "Max open files" of /proc/<pid>/limits', () => {
  assert.equal(softFdLimit(LIMITS), 1024);
  assert.equal(softFdLimit(LIMITS.replace('1024                ', 'unlimited           ')), Infinity);
  assert.equal(softFdLimit('nothing here'), Infinity);
});

test('admits while the reserve stays free, refuses past it (this process, its real limit)', { skip: process.platform !== 'linux' }, () => {
  const budget = new FdBudget(32);
  assert.equal(budget.admit(0, 0), true);
  const open = readdirSync('/proc/self/fd').length;
  assert.ok(Math.abs(budget.open - open) <= 2, `counted ${budget.open}, /proc says ${open}`);
  const room = budget.limit - budget.open - 32;
  // Connections opened since the count are added to it without counting again.
  assert.equal(budget.admit(room - 1, 10), true);
  assert.equal(budget.admit(room, 20), false);
  // A second later it counts again: those connections were never opened, so there is room.
  assert.equal(budget.admit(room, 2000), true);
});

test('refusals are reported once when they start, then at most every FD_LOG_INTERVAL_MS, and the run ends on the next admission', () => {
  const budget = new FdBudget();
  assert.equal(budget.refused(1000), 1);
  assert.equal(budget.refused(1001), 0);
  assert.equal(budget.refused(1002), 0);
  assert.equal(budget.refused(1000 + FD_LOG_INTERVAL_MS), 3, 'the next line counts the refusals since the last');
  assert.equal(budget.admitted(), 4, 'an admission ends the run and tells its length');
  assert.equal(budget.admitted(), 0);
  assert.equal(budget.refused(1000 + FD_LOG_INTERVAL_MS + 1), 1, 'a new run is reported at once');
});
