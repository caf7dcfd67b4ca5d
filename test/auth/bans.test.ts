import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BanList } from '../../src/auth/bans.js';
import { resolveConfig } from '../../src/config/load.js';
import type { TernConfigInput } from '../../src/config/schema.js';
import { isTernError } from '../../src/errors.js';

function bans(input: TernConfigInput['bans'] = {}) {
  const clock = { now: 1_000_000 };
  const list = new BanList(resolveConfig({ bans: input }).bans, { now: () => clock.now });
  return { list, clock };
}

test('N failures within the window ban the address for the configured time', () => {
  const { list, clock } = bans({ maxFailures: 3, windowMs: 1000, durationMs: 5000 });
  assert.equal(list.recordFailure('203.0.113.9', 'auth'), false);
  assert.equal(list.recordFailure('203.0.113.9', 'malformed'), false);
  assert.equal(list.isBanned('203.0.113.9'), false);
  assert.equal(list.recordFailure('203.0.113.9', 'auth'), true, 'the third failure bans');
  assert.equal(list.isBanned('203.0.113.9'), true);
  assert.equal(list.isBanned('::ffff:203.0.113.9'), true, 'IPv4-mapped IPv6 is the same address');
  assert.equal(list.isBanned('203.0.113.10'), false);
  clock.now += 4999;
  assert.equal(list.isBanned('203.0.113.9'), true);
  clock.now += 1;
  assert.equal(list.isBanned('203.0.113.9'), false, 'the ban expired');
  assert.deepEqual(list.list(), []);
});

test('failures spread over more than the window do not ban', () => {
  const { list, clock } = bans({ maxFailures: 2, windowMs: 1000 });
  list.recordFailure('2001:db8::1', 'auth');
  clock.now += 1000;
  assert.equal(list.recordFailure('2001:db8::1', 'auth'), false, 'a new window started');
  assert.equal(list.recordFailure('2001:db8::1', 'auth'), true);
});

test('exempt addresses (loopback by default) and max_failures = 0 never ban', () => {
  const { list } = bans({ maxFailures: 1 });
  assert.equal(list.recordFailure('127.0.0.1', 'auth'), false);
  assert.equal(list.recordFailure('::1', 'auth'), false);
  assert.equal(list.isBanned('127.0.0.1'), false);
  const custom = bans({ maxFailures: 1, exempt: ['10.0.0.0/8'] }).list;
  assert.equal(custom.recordFailure('10.20.30.40', 'auth'), false);
  assert.equal(custom.recordFailure('127.0.0.1', 'auth'), true, 'a custom exempt list replaces the default');
  const off = bans({ maxFailures: 0 }).list;
  for (let i = 0; i < 100; i++) off.recordFailure('198.51.100.7', 'malformed');
  assert.equal(off.isBanned('198.51.100.7'), false);
});

test('operators list, add and remove bans', () => {
  const { list, clock } = bans();
  const entry = list.add('198.51.100.1', 60_000, 'abuse report');
  assert.deepEqual(entry, { address: '198.51.100.1', until: clock.now + 60_000, reason: 'abuse report' });
  list.add('198.51.100.2');
  assert.deepEqual(list.list().map((b) => b.address), ['198.51.100.1', '198.51.100.2']);
  assert.equal(list.remove('198.51.100.1'), true);
  assert.equal(list.remove('198.51.100.1'), false);
  assert.equal(list.isBanned('198.51.100.1'), false);
  assert.equal(list.isBanned('198.51.100.2'), true);
});

test('the exempt list must hold addresses or CIDR ranges', () => {
  assert.throws(() => resolveConfig({ bans: { exempt: ['localhost'] } }), (err) => isTernError(err, 'ERR_CONFIG_INVALID') && /bans\.exempt\[0\]/.test((err as Error).message));
  assert.throws(() => resolveConfig({ bans: { exempt: ['10.0.0.0/33'] } }), (err) => isTernError(err, 'ERR_CONFIG_INVALID'));
});
