import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { BridgeCache, type CacheLimits } from '../../src/bridge/cache.js';
import { Entry, Flag } from '../../src/bridge/entry.js';
import { isTernError } from '../../src/errors.js';

const dirs: string[] = [];
function tempFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-cache-'));
  dirs.push(dir);
  return join(dir, 'bridge-t.db');
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function entries(from: number, n: number, payloadBytes = 10): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) {
    out.push(new Entry(from + i, 't/x', Buffer.alloc(payloadBytes, 1), 1, false, null, undefined, 0, Flag.ROW, 0, 0));
  }
  return out;
}

const unlimited: CacheLimits = { maxMessages: 0, maxBytes: 0, overflow: 'drop_oldest' };

describe('bridge cache', () => {
  it('keeps rows in insertion order across reopen and deletes only acknowledged ranges', () => {
    const file = tempFile();
    let c = BridgeCache.open(file, { durability: 'full' });
    c.commit(entries(1, 100), 0, 0, unlimited);
    c.commit([], 0, 40, unlimited);
    assert.equal(c.count, 60);
    c.close();
    c = BridgeCache.open(file, { durability: 'normal' });
    assert.equal(c.count, 60);
    assert.equal(c.firstSeq, 41);
    assert.equal(c.lastSeq, 100);
    const rows = c.read(40, Infinity, 1000);
    assert.deepEqual(rows.map((r) => r.seq), Array.from({ length: 60 }, (_, i) => 41 + i));
    c.close();
  });

  it('drop_oldest evicts the oldest rows at the message limit', () => {
    const c = BridgeCache.open(tempFile(), { durability: 'normal' });
    const limits: CacheLimits = { maxMessages: 50, maxBytes: 0, overflow: 'drop_oldest' };
    c.commit(entries(1, 40), 0, 0, limits);
    const r = c.commit(entries(41, 30), 0, 0, limits);
    assert.equal(r.evicted, 20);
    assert.equal(r.evictedUpTo, 20);
    assert.equal(c.count, 50);
    assert.equal(c.read(0, Infinity, 1)[0]!.seq, 21);
    // A batch bigger than the cache: its oldest rows go too.
    const r2 = c.commit(entries(71, 60), 0, 0, limits);
    assert.equal(r2.evicted, 50);
    assert.equal(r2.batchEvicted, 10);
    assert.equal(c.count, 50);
    c.close();
  });

  it('reject_new refuses rows beyond the byte limit', () => {
    const c = BridgeCache.open(tempFile(), { durability: 'normal' });
    const size = entries(1, 1)[0]!.size;
    const limits: CacheLimits = { maxMessages: 0, maxBytes: size * 10, overflow: 'reject_new' };
    const r = c.commit(entries(1, 15), 0, 0, limits);
    assert.equal(r.rejectedFrom, 10);
    assert.equal(c.count, 10);
    assert.ok(c.bytes <= size * 10);
    c.close();
  });

  it('treats a full disk as a full cache, not a crash', () => {
    const c = BridgeCache.open(tempFile(), { durability: 'normal', maxPageCount: 40 });
    let rejected = 0;
    for (let i = 0; i < 60; i++) {
      const r = c.commit(entries(1 + i * 50, 50, 200), 0, 0, { maxMessages: 0, maxBytes: 0, overflow: 'reject_new' });
      rejected += 50 - r.rejectedFrom;
    }
    assert.ok(rejected > 0, 'some rows were refused');
    assert.ok(c.diskFull);
    assert.ok(c.count > 0);
    c.close();
  });

  it('moves a corrupt file aside (never deletes it) and starts fresh', () => {
    const file = tempFile();
    writeFileSync(file, 'this is not a database, just some bytes that are long enough'.repeat(100));
    const c = BridgeCache.open(file, { durability: 'normal' });
    assert.ok(c.movedAside !== null && existsSync(c.movedAside));
    assert.equal(c.count, 0);
    c.close();
  });

  it('reset() (corruption found while open) moves the file aside, keeps the lock and goes on with the sequence', () => {
    const file = tempFile();
    const c = BridgeCache.open(file, { durability: 'normal' });
    c.commit(entries(1, 10), 0, 0, unlimited);
    const movedTo = c.reset(12);
    assert.ok(movedTo.startsWith(`${file}.corrupt-`) && existsSync(movedTo), 'the old file is kept');
    assert.deepEqual([c.count, c.bytes, c.lastSeq], [0, 0, 12]);
    assert.throws(() => BridgeCache.open(file, { durability: 'normal' }), (err: unknown) => isTernError(err, 'ERR_STORAGE_LOCKED'));
    c.commit(entries(13, 5), 0, 0, unlimited);
    assert.deepEqual(c.read(0, Infinity, 100).map((r) => r.seq), [13, 14, 15, 16, 17]);
    c.close();
    const again = BridgeCache.open(file, { durability: 'normal' });
    assert.deepEqual([again.count, again.lastSeq, again.movedAside], [5, 17, null]);
    again.close();
    const old = new Database(movedTo, { readonly: true });
    assert.equal(old.prepare('SELECT count(*) FROM msgs').pluck().get(), 10, 'the moved file still holds its rows');
    old.close();
  });

  it('refuses a second open of the same cache (lock)', () => {
    const file = tempFile();
    const c = BridgeCache.open(file, { durability: 'normal' });
    assert.throws(() => BridgeCache.open(file, { durability: 'normal' }), (err: unknown) => isTernError(err, 'ERR_STORAGE_LOCKED'));
    c.close();
    BridgeCache.open(file, { durability: 'normal' }).close();
  });

  it('gives the space back after a drain', () => {
    const file = tempFile();
    const c = BridgeCache.open(file, { durability: 'normal' });
    c.commit(entries(1, 20000, 200), 0, 0, unlimited);
    const big = c.fileBytes();
    c.commit([], 0, 20000, unlimited);
    while (c.vacuumStep()) {
      // step until done
    }
    assert.ok(c.fileBytes() < big / 4, `${c.fileBytes()} < ${big / 4}`);
    // Seqs keep going after a drain.
    c.close();
    const again = BridgeCache.open(file, { durability: 'normal' });
    assert.equal(again.lastSeq, 20000);
    again.close();
    assert.ok(readdirSync(join(file, '..')).length > 0);
  });
});
