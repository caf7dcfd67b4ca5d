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

test('the route cache never serves a stale route: add, replace and remove empty it', () => {
  const trie = new TopicTrie<string>();
  trie.add('a/+', 'c1', 'plus');
  assert.deepEqual(matches(trie, 'a/b').entries, ['plus']);
  assert.deepEqual(matches(trie, 'a/b').entries, ['plus']); // served from the cache
  assert.equal(trie.cachedRoutes, 1);
  trie.add('a/b', 'c2', 'exact');
  assert.equal(trie.cachedRoutes, 0);
  assert.deepEqual(matches(trie, 'a/b').entries, ['exact', 'plus']);
  trie.add('a/+', 'c1', 'plus2'); // replaced entry
  assert.deepEqual(matches(trie, 'a/b').entries, ['exact', 'plus2']);
  trie.add('$share/g/a/#', 'c3', 'member');
  assert.deepEqual(matches(trie, 'a/b'), { entries: ['exact', 'plus2'], groups: ['g:member'] });
  trie.remove('$share/g/a/#', 'c3');
  trie.remove('a/+', 'c1');
  assert.deepEqual(matches(trie, 'a/b'), { entries: ['exact'], groups: [] });
  trie.remove('a/b', 'c2');
  assert.deepEqual(matches(trie, 'a/b'), { entries: [], groups: [] });
});

test('the route cache stays within its size and gives the same answers as no cache', () => {
  const cached = new TopicTrie<string>({ routeCacheSize: 8 });
  const plain = new TopicTrie<string>({ routeCacheSize: 0 });
  for (const f of ['#', 'a/#', 'a/+/c', '+/b', 'a/b/c', '$x/#', '+/+']) {
    cached.add(f, f, f);
    plain.add(f, f, f);
  }
  const words = ['a', 'b', 'c', '', '$x'];
  for (let i = 0; i < 500; i++) {
    const topic = Array.from({ length: 1 + (i % 4) }, (_, j) => words[(i * 7 + j * 3) % words.length]!).join('/');
    assert.deepEqual(matches(cached, topic), matches(plain, topic), topic);
    assert.deepEqual(matches(cached, topic), matches(plain, topic), `${topic} (cached)`);
    assert.ok(cached.cachedRoutes <= 8);
  }
  assert.equal(plain.cachedRoutes, 0);
});

test('the route cache keeps busy topics and steps aside for a topic space wider than itself', () => {
  const trie = new TopicTrie<string>({ routeCacheSize: 8 });
  trie.add('t/+', 'c1', 'plus');
  // A hot topic between cold ones: each generation has more hits than misses, so caching goes on.
  for (let i = 0; i < 40; i++) {
    for (let j = 0; j < 3; j++) assert.deepEqual(matches(trie, 't/hot').entries, ['plus']);
    assert.deepEqual(matches(trie, `t/${i}`).entries, ['plus']);
    assert.ok(trie.cachedRoutes > 0 && trie.cachedRoutes <= 8);
  }
  // Only new topics: a generation of misses turns the cache off, and the answers stay right.
  for (let i = 0; i < 40; i++) assert.deepEqual(matches(trie, `t/cold-${i}`).entries, ['plus']);
  assert.equal(trie.cachedRoutes, 0);
  assert.deepEqual(matches(trie, 'x').entries, []);
});
