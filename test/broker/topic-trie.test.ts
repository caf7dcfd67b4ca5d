import assert from 'node:assert/strict';
import { test } from 'node:test';
import { topicMatches } from '../../src/broker/topic.js';
import { TopicTrie, type MatchSink, type SharedGroup } from '../../src/broker/topic-trie.js';

function matches(trie: TopicTrie<string>, topic: string): { entries: string[]; groups: string[] } {
  const entries: string[] = [];
  const groups: string[] = [];
  const sink: MatchSink<string> = {
    onEntry: (e) => entries.push(e),
    onGroup: (g: SharedGroup<string>) => groups.push(`${g.name}:${[...g.members.values()].join(',')}`),
  };
  trie.match(topic, sink);
  return { entries: entries.sort(), groups: groups.sort() };
}

test('wildcards match as the spec says, including `a/#` matching `a` [MQTT-4.7.1-2]', () => {
  const trie = new TopicTrie<string>();
  for (const f of ['a/b', 'a/+', 'a/#', '#', '+/b', 'a/b/c', '+/+/+', 'x']) trie.add(f, `c-${f}`, f);
  assert.deepEqual(matches(trie, 'a/b').entries, ['#', '+/b', 'a/#', 'a/+', 'a/b']);
  assert.deepEqual(matches(trie, 'a').entries, ['#', 'a/#']);
  assert.deepEqual(matches(trie, 'a/b/c').entries, ['#', '+/+/+', 'a/#', 'a/b/c']);
});

test('leading wildcards do not match $ topics [MQTT-4.7.2-1]', () => {
  const trie = new TopicTrie<string>();
  for (const f of ['#', '+/info', '$SYS/#', '$SYS/+']) trie.add(f, f, f);
  assert.deepEqual(matches(trie, '$SYS/info').entries, ['$SYS/#', '$SYS/+']);
});

test('re-adding the same filter for an owner replaces it [MQTT-3.8.4-3]', () => {
  const trie = new TopicTrie<string>();
  assert.equal(trie.add('a/+', 'c1', 'first'), false);
  assert.equal(trie.add('a/+', 'c1', 'second'), true);
  assert.equal(trie.size, 1);
  assert.deepEqual(matches(trie, 'a/x').entries, ['second']);
});

test('remove prunes and only removes the owner given', () => {
  const trie = new TopicTrie<string>();
  trie.add('a/b/c', 'c1', 'one');
  trie.add('a/b/c', 'c2', 'two');
  assert.equal(trie.remove('a/b/c', 'c1'), 'one');
  assert.equal(trie.remove('a/b/c', 'c1'), undefined);
  assert.deepEqual(matches(trie, 'a/b/c').entries, ['two']);
  trie.remove('a/b/c', 'c2');
  assert.equal(trie.size, 0);
  assert.deepEqual([...trie.entries()], []);
});

test('shared subscriptions are grouped per share name on their inner filter', () => {
  const trie = new TopicTrie<string>();
  trie.add('$share/g1/a/+', 'c1', 'm1');
  trie.add('$share/g1/a/+', 'c2', 'm2');
  trie.add('$share/g2/a/#', 'c3', 'm3');
  assert.deepEqual(matches(trie, 'a/x'), { entries: [], groups: ['g1:m1,m2', 'g2:m3'] });
  trie.remove('$share/g1/a/+', 'c1');
  assert.deepEqual(matches(trie, 'a/x').groups, ['g1:m2', 'g2:m3']);
  const listed = [...trie.entries()].map((e) => e.filter).sort();
  assert.deepEqual(listed, ['$share/g1/a/+', '$share/g2/a/#']);
});

test('matches agree with topicMatches on random filters and topics', () => {
  const words = ['a', 'b', '', '$x'];
  const rand = (n: number): number => Math.floor(Math.random() * n);
  const trie = new TopicTrie<string>();
  const filters: string[] = [];
  for (let i = 0; i < 300; i++) {
    const levels = Array.from({ length: 1 + rand(4) }, () => ['+', 'a', 'b', ''][rand(4)]!);
    if (rand(3) === 0) levels.push('#');
    const f = levels.join('/');
    filters.push(f);
    trie.add(f, f, f);
  }
  for (let i = 0; i < 300; i++) {
    const topic = Array.from({ length: 1 + rand(5) }, () => words[rand(words.length)]!).join('/');
    const expected = [...new Set(filters.filter((f) => topicMatches(f, topic)))].sort();
    assert.deepEqual(matches(trie, topic).entries, expected, topic);
  }
});
