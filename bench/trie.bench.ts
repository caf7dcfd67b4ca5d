/**
 * Topic trie: match cost against the number of subscriptions and the share of
 * wildcard filters (src/broker/topic-trie.ts `TopicTrie`).
 *
 *   node --import tsx bench/trie.bench.ts        # BENCH_MS=<ms per case> (default 400), TRIE_MAX=<largest size> (default 100000)
 *
 * Filters live in a 4-level space `bench/<a>/<b>/<c>` (a, b < 64): filter i
 * is exact, `bench/<a>/+/<c>` or `bench/<a>/#`, by the mix. Topics matched are
 * drawn from the same space, so every match walks real branches; a `#` filter
 * matches a sixty-fourth of all topics, so "entries" (owners per match) grows
 * with the size, as it would in a broker.
 *
 * Each case runs twice: `cache: 'off'` (routeCacheSize 0: the trie walk alone)
 * and `cache: 'on'` (the default route cache; the 1,024 topics fit, so it
 * measures hits). Topic strings are decoded from bytes for every match, as
 * the broker does, so a cache lookup pays for hashing a fresh string; the
 * decoding alone is reported as `decodeNs` (included in nsPerMatch).
 * One JSON line per case:
 * {bench: 'trie', mix, filters, cache, addNsPerOp, matchesPerSec, nsPerMatch, decodeNs, entriesPerMatch, ...}.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { TopicTrie, type MatchSink, type SharedGroup } from '../src/broker/topic-trie.js';

const DURATION_MS = Number(process.env.BENCH_MS ?? 400);
const MAX_FILTERS = Number(process.env.TRIE_MAX ?? 100_000);
const SIZES = [100, 1_000, 10_000, 100_000].filter((n) => n <= MAX_FILTERS);

/** Share of exact, single-level (`+`) and multi-level (`#`) filters. */
const MIXES = [
  { name: 'exact', exact: 1, plus: 0, hash: 0 },
  { name: 'mixed-80/15/5', exact: 0.8, plus: 0.15, hash: 0.05 },
  { name: 'wild-50/30/20', exact: 0.5, plus: 0.3, hash: 0.2 },
] as const;

function gitSha(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return 'unknown';
  }
}

const META = { sha: gitSha(), node: process.version, cpu: os.cpus()[0]?.model ?? 'unknown' };

/** A deterministic PRNG (mulberry32) so every run builds the same filters. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function filterFor(i: number, mix: (typeof MIXES)[number], r: number): string {
  const a = i & 63;
  const b = (i >>> 6) & 63;
  const c = i >>> 12;
  if (r < mix.exact) return `bench/${a}/${b}/${c}`;
  if (r < mix.exact + mix.plus) return `bench/${a}/+/${c}`;
  return `bench/${a}/#`;
}

class CountingSink implements MatchSink<number> {
  entries = 0;
  onEntry(_entry: number): void {
    this.entries++;
  }
  onGroup(_group: SharedGroup<number>): void {
    this.entries++;
  }
}

/** ns per topic decode alone (latin1 bytes -> string, as the codec's decodeUtf8 does for ASCII). */
function decodeNs(topics: readonly Buffer[]): number {
  let sum = 0;
  const start = performance.now();
  let now = start;
  let n = 0;
  while (now - start < Math.min(100, DURATION_MS / 4)) {
    for (let j = 0; j < 1024; j++) sum += topics[j]!.toString('latin1', 0, topics[j]!.length).length;
    n += 1024;
    now = performance.now();
  }
  if (sum < 0) throw new Error('unreachable');
  return ((now - start) * 1e6) / n;
}

for (const mix of MIXES) {
  for (const n of SIZES) {
    for (const cache of ['off', 'on'] as const) {
      const random = rng(n);
      const filters = Array.from({ length: n }, (_, i) => filterFor(i, mix, random()));
      const trie = new TopicTrie<number>(cache === 'off' ? { routeCacheSize: 0 } : {});
      const addStart = performance.now();
      for (let i = 0; i < n; i++) trie.add(filters[i]!, `c${i}`, i);
      const addNs = ((performance.now() - addStart) * 1e6) / n;

      // Topics from the space the exact filters occupy (c < ceil(n / 4096)).
      const cMax = Math.max(1, Math.ceil(n / 4096));
      const topics = Array.from({ length: 1024 }, () => {
        const r = Math.floor(random() * 4096 * cMax);
        return Buffer.from(`bench/${r & 63}/${(r >>> 6) & 63}/${r >>> 12}`, 'latin1');
      });
      const match = (j: number): void => {
        const bytes = topics[j]!;
        trie.match(bytes.toString('latin1', 0, bytes.length), sink);
      };
      const sink = new CountingSink();
      const warmUntil = performance.now() + Math.min(200, DURATION_MS / 2);
      let k = 0;
      while (performance.now() < warmUntil) match(k++ & 1023);
      sink.entries = 0;
      let matches = 0;
      const start = performance.now();
      let now = start;
      while (now - start < DURATION_MS) {
        for (let j = 0; j < 1024; j++) match(j);
        matches += 1024;
        now = performance.now();
      }
      const secs = (now - start) / 1000;
      process.stdout.write(
        `${JSON.stringify({
          bench: 'trie',
          mix: mix.name,
          filters: n,
          cache,
          addNsPerOp: Math.round(addNs),
          matchesPerSec: Math.round(matches / secs),
          nsPerMatch: Math.round((secs * 1e9) / matches),
          decodeNs: Math.round(decodeNs(topics)),
          entriesPerMatch: Math.round((sink.entries / matches) * 100) / 100,
          ...META,
        })}\n`,
      );
    }
  }
}
