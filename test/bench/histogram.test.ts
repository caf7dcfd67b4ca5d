import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram } from '../../src/bench/histogram.js';

test('values below 64 µs are recorded exactly', () => {
  const h = new Histogram();
  for (const v of [3, 3, 7, 63]) h.record(v);
  assert.equal(h.percentile(50), 3);
  assert.equal(h.percentile(75), 7);
  assert.equal(h.percentile(100), 63);
  assert.equal(h.min, 3);
  assert.equal(h.max, 63);
  assert.equal(h.mean, 76 / 4);
});

test('percentiles of a uniform 1..100000 µs spread are within 3.2% of the truth', () => {
  const h = new Histogram();
  for (let v = 1; v <= 100_000; v++) h.record(v);
  for (const p of [50, 90, 99, 99.9]) {
    const truth = (p / 100) * 100_000;
    const got = h.percentile(p);
    assert.ok(Math.abs(got - truth) / truth <= 0.032, `p${p}: ${got} vs ${truth}`);
  }
  assert.equal(h.count, 100_000);
  assert.equal(h.percentile(100), 100_000);
});

test('merge adds counts and reset empties; huge and negative values are clamped', () => {
  const a = new Histogram();
  const b = new Histogram();
  a.record(100);
  b.record(-5);
  b.record(1e12);
  a.merge(b);
  assert.equal(a.count, 3);
  assert.equal(a.min, 0);
  assert.equal(a.max, 2 ** 31 - 1);
  a.reset();
  assert.equal(a.count, 0);
  assert.equal(a.percentile(99), 0);
});
