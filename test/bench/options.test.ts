import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBenchArgs, topicFor } from '../../src/bench/options.js';
import { matches, planFor } from '../../src/bench/run.js';
import { isTernError } from '../../src/errors.js';

test('defaults follow the scenario: latency is one pair at 100 msg/s', () => {
  const pairs = parseBenchArgs(['pairs']);
  assert.ok(pairs !== null);
  assert.equal(pairs.clients, 10);
  assert.equal(pairs.rate, 0);
  assert.equal(pairs.port, 1883);
  assert.equal(pairs.version, 5);
  assert.equal(pairs.topic, 'tern/bench/pairs/%i');
  const latency = parseBenchArgs(['latency', '--tls', '-q', '1']);
  assert.ok(latency !== null);
  assert.equal(latency.clients, 1);
  assert.equal(latency.rate, 100);
  assert.equal(latency.port, 8883);
  assert.equal(latency.qos, 1);
  assert.equal(parseBenchArgs(['--help']), null);
});

test('bad command lines are ERR_CLI_USAGE', () => {
  for (const argv of [
    [],
    ['nope'],
    ['pub', '-q', '3'],
    ['pub', '--rate', '-1'],
    ['pub', '--bogus'],
    ['pub', '-t', 'a/#'],
    ['latency', '-s', '8'],
    ['pub', '-V', '3'],
  ]) {
    assert.throws(() => parseBenchArgs(argv), (err) => isTernError(err, 'ERR_CLI_USAGE'), argv.join(' '));
  }
});

test('plans: fan-in subscribes to the wildcard of the publishers; fan-out shares one topic', () => {
  const fanin = planFor(parseBenchArgs(['fanin', '-c', '3', '-t', 'f/%i/x'])!);
  assert.deepEqual(fanin.publishers, ['f/1/x', 'f/2/x', 'f/3/x']);
  assert.deepEqual(fanin.subscribers, ['f/+/x']);
  assert.ok(fanin.publishers.every((t) => matches('f/+/x', t)));
  const fanout = planFor(parseBenchArgs(['fanout', '-c', '2'])!);
  assert.deepEqual(fanout.publishers, ['tern/bench/fanout']);
  assert.deepEqual(fanout.subscribers, ['tern/bench/fanout', 'tern/bench/fanout']);
  const pairs = planFor(parseBenchArgs(['pairs', '-c', '2'])!);
  assert.deepEqual(pairs.publishers, pairs.subscribers);
  assert.equal(topicFor('a/%i/%i', 7), 'a/7/7');
  assert.ok(matches('a/#', 'a/b/c'));
  assert.ok(!matches('a/+', 'a/b/c'));
});
