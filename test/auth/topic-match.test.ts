import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { filterCovers, isValidFilter, matchTopic } from '../../src/auth/topic-match.js';

describe('matchTopic', () => {
  const cases: Array<[filter: string, topic: string, expected: boolean]> = [
    ['a/b', 'a/b', true],
    ['a/b', 'a/c', false],
    ['a/b', 'a/b/c', false],
    ['a/b/c', 'a/b', false],
    ['a/+', 'a/b', true],
    ['a/+', 'a/b/c', false],
    ['a/+', 'a', false],
    ['a/+', 'a/', true], // empty level is a level
    ['+/+', '/x', true],
    ['+', '/x', false],
    ['a/#', 'a', true], // [MQTT-4.7.1-2] `#` matches the parent level
    ['a/#', 'a/b/c', true],
    ['a/#', 'ab', false],
    ['#', 'anything/at/all', true],
    ['+/b/#', 'x/b', true],
    ['#', '$SYS/uptime', false], // [MQTT-4.7.2-1]
    ['+/uptime', '$SYS/uptime', false], // [MQTT-4.7.2-1]
    ['$SYS/#', '$SYS/uptime', true],
    ['$SYS/+', '$SYS/uptime', true],
    ['a//b', 'a//b', true],
    ['a/+/b', 'a//b', true],
  ];
  for (const [filter, topic, expected] of cases) {
    it(`${JSON.stringify(filter)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(topic)}`, () => {
      assert.equal(matchTopic(filter, topic), expected);
    });
  }
});

describe('filterCovers', () => {
  const cases: Array<[rule: string, sub: string, expected: boolean]> = [
    ['a/b', 'a/b', true],
    ['a/+', 'a/b', true],
    ['a/+', 'a/+', true],
    ['a/b', 'a/+', false], // the sub can reach a/c
    ['a/+', 'a/#', false], // + does not cover #
    ['a/#', 'a/#', true],
    ['a/#', 'a/+/c', true],
    ['a/#', 'a', true],
    ['a/+/#', 'a/b', true],
    ['a', 'a/#', false], // a/# reaches a/x
    ['#', '#', true],
    ['#', 'x/+/y', true],
    ['#', '$SYS/#', false], // [MQTT-4.7.2-1]
    ['+/x', '$SYS/x', false], // [MQTT-4.7.2-1]
    ['$SYS/#', '$SYS/broker/+', true],
    ['$SYS/broker/uptime', '$SYS/broker/#', false],
    ['+/b', 'x/b', true],
    ['+/b', '+/b', true],
  ];
  for (const [rule, sub, expected] of cases) {
    it(`rule ${JSON.stringify(rule)} ${expected ? 'covers' : 'does not cover'} ${JSON.stringify(sub)}`, () => {
      assert.equal(filterCovers(rule, sub), expected);
    });
  }

  // Property: "covers" means every topic the sub matches, the rule matches; and a
  // literal topic name (no wildcards) is covered exactly when the rule matches it.
  const level = fc.constantFrom('a', 'b', '', '$x');
  const filterLevel = fc.constantFrom('a', 'b', '', '+');
  const topicArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join('/'));
  const filterArb = fc
    .tuple(fc.array(filterLevel, { minLength: 1, maxLength: 4 }), fc.boolean())
    .map(([l, hash]) => (hash ? [...l, '#'] : l).join('/'));

  it('covers(rule, topicName) equals matchTopic(rule, topicName)', () => {
    fc.assert(
      fc.property(filterArb, topicArb, (rule, topic) => {
        assert.equal(filterCovers(rule, topic), matchTopic(rule, topic));
      }),
      { numRuns: 2000 },
    );
  });

  it('when rule covers sub, every topic matched by sub is matched by rule', () => {
    fc.assert(
      fc.property(filterArb, filterArb, fc.array(topicArb, { minLength: 20, maxLength: 20 }), (rule, sub, topics) => {
        if (!filterCovers(rule, sub)) return;
        for (const t of topics) {
          if (matchTopic(sub, t)) assert.ok(matchTopic(rule, t), `${rule} ⊇ ${sub} but misses ${t}`);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('isValidFilter', () => {
  it('accepts whole-level wildcards and rejects embedded ones [MQTT-4.7.1-2] [MQTT-4.7.1-3]', () => {
    for (const f of ['a', '#', '+', 'a/+/b', 'a/#', '/', '+/+']) assert.ok(isValidFilter(f), f);
    for (const f of ['', 'a#', 'a/#/b', 'a+', 'a/b+', '#/a', '++']) assert.ok(!isValidFilter(f), f);
  });
});
