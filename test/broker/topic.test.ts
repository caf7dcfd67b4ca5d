import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidTopicFilter, isValidTopicName, parseSharedFilter, topicMatches } from '../../src/broker/topic.js';

test('topic names: non-empty, no wildcards, level cap [MQTT-4.7.3-1] [MQTT-3.3.2-2]', () => {
  for (const ok of ['a', 'a/b', '/', '/a', 'a//b', '$SYS/x', 'ü/€']) assert.equal(isValidTopicName(ok, 10), true, ok);
  for (const bad of ['', 'a/+', '#', 'a/#', 'a+b']) assert.equal(isValidTopicName(bad, 10), false, bad);
  assert.equal(isValidTopicName('a/b/c', 3), true);
  assert.equal(isValidTopicName('a/b/c/d', 3), false);
});

test('topic filters: # last and alone, + alone in its level [MQTT-4.7.1-2] [MQTT-4.7.1-3]', () => {
  for (const ok of ['#', '+', 'a/#', 'a/+/b', '+/+', '/#', 'a//+', '$SYS/#', 'sport/tennis/#'])
    assert.equal(isValidTopicFilter(ok, 10), true, ok);
  for (const bad of ['', 'a/#/b', 'a#', 'a/b#', 'a+', '+a/b', 'a/+b', '##'])
    assert.equal(isValidTopicFilter(bad, 10), false, bad);
});

test('shared filters parse group and inner filter [MQTT-4.8.2-1] [MQTT-4.8.2-2]', () => {
  assert.deepEqual(parseSharedFilter('$share/g/a/+'), { group: 'g', filter: 'a/+' });
  assert.equal(parseSharedFilter('a/b'), undefined);
  assert.equal(parseSharedFilter('$share/g'), null);
  assert.equal(parseSharedFilter('$share//a'), null);
  assert.equal(parseSharedFilter('$share/g+/a'), null);
  assert.equal(parseSharedFilter('$share/g/'), null);
});

test('topicMatches follows wildcard and $ rules [MQTT-4.7.1-2] [MQTT-4.7.2-1]', () => {
  assert.equal(topicMatches('sport/#', 'sport'), true);
  assert.equal(topicMatches('sport/+', 'sport'), false);
  assert.equal(topicMatches('sport/+', 'sport/'), true);
  assert.equal(topicMatches('+/+', '/finance'), true);
  assert.equal(topicMatches('#', '$SYS/x'), false);
  assert.equal(topicMatches('+/x', '$SYS/x'), false);
  assert.equal(topicMatches('$SYS/#', '$SYS/x'), true);
});
