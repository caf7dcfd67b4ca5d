/**
 * The token buckets behind limits.max_publish_rate / max_publish_bytes_rate
 * and the per-address connection window, driven with explicit clocks.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionRate, PublishRate, RATE_DISCONNECT, RATE_OK, wireBytes, type PublishRateLimits } from '../../src/broker/rate-limit.js';

const limits = (o: Partial<PublishRateLimits>): PublishRateLimits => ({
  maxPublishRate: 0,
  maxPublishBytesRate: 0,
  rateLimitDisconnectAfterMs: 0,
  ...o,
});

test('wireBytes counts the fixed header: type byte and a 1-4 byte remaining length', () => {
  assert.equal(wireBytes(0), 2);
  assert.equal(wireBytes(127), 129);
  assert.equal(wireBytes(128), 131);
  assert.equal(wireBytes(16_383), 16_386);
  assert.equal(wireBytes(16_384), 16_388);
  assert.equal(wireBytes(2_097_152), 2_097_157);
});

test('a client within its rate (one second of burst) reads on; past it, waits off exactly its debt', () => {
  const l = limits({ maxPublishRate: 100 });
  const r = new PublishRate(0);
  assert.equal(r.take(100, 0, l, 0), RATE_OK, 'a full bucket holds one second of the rate');
  assert.equal(r.over, false);
  assert.equal(r.take(50, 0, l, 0), 500, '50 packets over at 100/s: wait 500 ms');
  assert.equal(r.over, true);
  assert.equal(r.wait(l, 250), 250, 'half paid off');
  assert.equal(r.wait(l, 500), RATE_OK, 'paid off');
  assert.equal(r.over, true, 'still over until a read shows otherwise');
  assert.equal(r.take(1, 0, l, 520), RATE_OK, '2 tokens came back in 20 ms');
  assert.equal(r.over, false);
});

test('the bytes bucket limits on its own, and the larger debt of the two decides', () => {
  const r = new PublishRate(0);
  assert.equal(r.take(1, 3000, limits({ maxPublishBytesRate: 1000 }), 0), 2000);
  const both = new PublishRate(0);
  assert.equal(both.take(20, 1500, limits({ maxPublishRate: 10, maxPublishBytesRate: 1000 }), 0), 1000, 'packets: 1000 ms, bytes: 500 ms');
});

test('over the limit for rateLimitDisconnectAfterMs means disconnect; the pause never runs past that deadline', () => {
  const l = limits({ maxPublishRate: 10, rateLimitDisconnectAfterMs: 1000 });
  const r = new PublishRate(0);
  assert.equal(r.take(110, 0, l, 0), 1000, 'a 10 s debt, capped at the 1 s deadline');
  assert.equal(r.wait(l, 1000), RATE_DISCONNECT);
  // Paying off in time and going over again continues the same episode.
  const s = new PublishRate(0);
  assert.equal(s.take(12, 0, l, 0), 200);
  assert.equal(s.wait(l, 200), RATE_OK);
  assert.equal(s.take(5, 0, l, 210), 490, '0.1 token came back in 10 ms');
  assert.equal(s.wait(l, 700), RATE_OK);
  assert.equal(s.take(20, 0, l, 710), 290, 'capped at the deadline, 1000 ms after the episode began');
  assert.equal(s.wait(l, 1000), RATE_DISCONNECT);
});

test('a bucket that refills completely ends the episode: a burst, a quiet second, a burst is not "staying over"', () => {
  const l = limits({ maxPublishRate: 10, rateLimitDisconnectAfterMs: 1000 });
  const r = new PublishRate(0);
  assert.equal(r.take(15, 0, l, 0), 500);
  assert.equal(r.wait(l, 500), RATE_OK);
  // Nothing read for 2 s: the bucket is full again, so this debt starts a new episode.
  assert.equal(r.take(15, 0, l, 2500), 500);
  assert.equal(r.wait(l, 3000), RATE_OK);
});

test('0 disables a limit; limits read at each call, so a change (reload) applies at once', () => {
  const r = new PublishRate(0);
  assert.equal(r.take(1e6, 1e9, limits({}), 0), RATE_OK);
  assert.equal(r.take(20, 0, limits({ maxPublishRate: 10 }), 10), 1000, 'turned on: starts from a full bucket');
  assert.equal(r.wait(limits({}), 20), RATE_OK, 'turned off while paused: reading resumes');
  assert.equal(r.take(5, 0, limits({ maxPublishRate: 1 }), 30), 4000, 'a lower rate clamps the bucket to its new size');
});

test('ConnectionRate admits maxPerSecond per address per window and counts refusals in the window', () => {
  const c = new ConnectionRate();
  for (let i = 0; i < 3; i++) assert.equal(c.admit('10.0.0.1', 3, 1000), true);
  assert.equal(c.admit('10.0.0.1', 3, 1500), false);
  assert.equal(c.refused, 1, 'the first refusal of a window (the one to log)');
  assert.equal(c.admit('10.0.0.1', 3, 1600), false);
  assert.equal(c.refused, 2);
  assert.equal(c.admit('10.0.0.2', 3, 1700), true, 'other addresses are counted apart');
  assert.equal(c.admit('10.0.0.1', 3, 2000), true, 'a new window');
  assert.equal(c.refused, 0);
});

test('ConnectionRate stays bounded under a spray of addresses', () => {
  const c = new ConnectionRate();
  for (let i = 0; i < 70_000; i++) c.admit(`a${i}`, 1, 0);
  // Past the cap, new addresses pass unchecked in this window; tracked ones are still limited.
  assert.equal(c.admit('a1', 1, 0), false);
  assert.equal(c.admit('zzz', 1, 0), true);
  assert.equal(c.admit('zzz', 1, 0), true, 'untracked: the cap bounds memory, not this address');
  assert.equal(c.admit('zzz', 1, 1000), true);
  assert.equal(c.admit('zzz', 1, 1001), false, 'tracked again in the next window');
});
