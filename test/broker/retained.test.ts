import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Message } from '../../src/broker/message.js';
import { RetainedStore } from '../../src/broker/retained.js';
import { topicMatches } from '../../src/broker/topic.js';

const msg = (topic: string, payload = 'x'): Message =>
  new Message({ topic, payload: Buffer.from(payload), qos: 0, retain: true });

test('retained messages are stored, replaced and cleared by an empty payload [MQTT-3.3.1-10] [MQTT-3.3.1-11]', () => {
  const store = new RetainedStore();
  store.set(msg('a/b', 'one'));
  store.set(msg('a/b', 'three'));
  assert.equal(store.count, 1);
  assert.equal(store.bytes, 5);
  assert.equal(store.get('a/b')?.payload.toString(), 'three');
  store.set(msg('a/b', ''));
  assert.equal(store.count, 0);
  assert.equal(store.bytes, 0);
  assert.equal(store.get('a/b'), undefined);
  assert.deepEqual(store.match('#'), []);
});

test('wildcard lookup returns exactly the matching topics, $ topics excluded from leading wildcards', () => {
  const store = new RetainedStore();
  const topics = ['a', 'a/b', 'a/b/c', 'a/c', 'b/b', '/x', 'a//b', '$SYS/up', '$SYS/a/b'];
  for (const t of topics) store.set(msg(t));
  for (const filter of ['#', 'a/#', 'a/+', '+/b', '+/+', '/+', 'a/+/b', '$SYS/#', '+/up', 'a/b/#', 'nothing/#']) {
    const got = store.match(filter).map((m) => m.topic).sort();
    const expected = topics.filter((t) => topicMatches(filter, t)).sort();
    assert.deepEqual(got, expected, filter);
  }
});

test('deleting prunes empty branches and keeps siblings', () => {
  const store = new RetainedStore();
  store.set(msg('a/b/c'));
  store.set(msg('a/d'));
  assert.equal(store.delete('a/b/c'), true);
  assert.equal(store.delete('a/b/c'), false);
  assert.deepEqual([...store.all()].map((m) => m.topic), ['a/d']);
});
