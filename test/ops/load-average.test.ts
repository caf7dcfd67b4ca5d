/** $SYS load figures follow Mosquitto's calc_load (src/sys_tree.c). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoadAverage } from '../../src/ops/load-average.js';

test('one interval moves each average toward the per-minute rate by 1 - exp(-dt/window)', () => {
  const load = new LoadAverage(0, 0);
  // 50 messages in 10 s = 300 per minute.
  const [m1, m5, m15] = load.update(50, 10_000);
  assert.equal(m1.toFixed(6), (300 * (1 - Math.exp(-10 / 60))).toFixed(6));
  assert.equal(m5.toFixed(6), (300 * (1 - Math.exp(-10 / 300))).toFixed(6));
  assert.equal(m15.toFixed(6), (300 * (1 - Math.exp(-10 / 900))).toFixed(6));
});

test('a steady rate is approached by every average, the 1-minute one fastest', () => {
  const load = new LoadAverage(0, 0);
  let total = 0;
  let values: readonly number[] = [];
  for (let t = 1; t <= 360; t++) {
    total += 20; // 20 per 10 s = 120 per minute
    values = load.update(total, t * 10_000);
  }
  assert.ok(Math.abs(values[0]! - 120) < 0.01, `1min ${values[0]}`);
  assert.ok(Math.abs(values[1]! - 120) < 0.1, `5min ${values[1]}`);
  assert.ok(values[2]! > 110 && values[2]! < 120, `15min ${values[2]}`);
});

test('no time passing leaves the averages unchanged', () => {
  const load = new LoadAverage(0, 0);
  load.update(60, 60_000);
  const before = [...load.values];
  assert.deepEqual([...load.update(1000, 60_000)], before);
});
