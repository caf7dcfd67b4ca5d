/**
 * A cache file that goes corrupt while the bridge runs (not at open): the
 * damage is made on the real file (garbage over the page of the message
 * table, through the file system, as a failing disk would) while the bridge
 * has it open. The bridge moves the file aside (never deletes it), reports
 * ERR_STORAGE_CORRUPT (events `cacheReset` and `error`), starts a fresh cache
 * and goes on: what it still holds in memory is written to the fresh cache
 * and reaches the remote; rows only the corrupt file held are counted as
 * dropped (`corrupt`).
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { isTernError } from '../../src/errors.js';
import { once, scenario } from '../bridge/helpers/setup.js';
import { checkDelivery, Publisher } from '../bridge/helpers/traffic.js';

/**
 * Garbage over the root page of the message table, written to the file
 * itself; then a write through a second connection, so the bridge's
 * connection drops its page cache and reads the damaged page.
 */
function corruptMessageTable(file: string): void {
  const db = new Database(file);
  try {
    db.pragma('wal_checkpoint(TRUNCATE)'); // the rows are in the main file now
    const root = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'msgs'").pluck().get() as number;
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const fd = openSync(file, 'r+');
    try {
      writeSync(fd, Buffer.alloc(pageSize, 0xa5), 0, pageSize, (root - 1) * pageSize);
    } finally {
      closeSync(fd);
    }
    db.prepare("INSERT INTO meta (key, value) VALUES ('poke', 1) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run();
  } finally {
    db.close();
  }
}

describe('bridge: cache corrupt at runtime', { timeout: 30_000 }, () => {
  it('moves the file aside, starts a fresh cache and loses nothing it still holds in memory', async (t) => {
    const s = await scenario(t);
    s.proxy.refuse();
    const bridge = s.bridge();
    const errors: Error[] = [];
    bridge.on('error', (e) => errors.push(e));
    await bridge.start();
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(200);
    assert.ok(await s.collector.until(() => bridge.stats().backlog.messages === 200, 5000), 'all 200 cached');

    const file = join(s.dir, 'bridge-edge1.db');
    corruptMessageTable(file);
    const reset = once<[string, string]>(bridge, 'cacheReset');
    await pub.burst(50); // the next group commit finds the damage
    const [resetFile, movedTo] = await reset;
    assert.equal(resetFile, file);
    assert.ok(existsSync(movedTo), 'the corrupt file is kept');
    assert.ok(readdirSync(s.dir).some((f) => f.startsWith('bridge-edge1.db.corrupt-')));
    assert.ok(errors.some((e) => isTernError(e, 'ERR_STORAGE_CORRUPT') && e.message.includes(movedTo)), errors.map(String).join('\n'));
    assert.ok(await s.collector.until(() => bridge.stats().backlog.messages === 250, 5000), 'the fresh cache holds all 250');
    assert.equal(bridge.stats().drops.corrupt, 0);

    s.proxy.pass();
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked), 10_000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0 });
    assert.ok(await s.collector.until(() => bridge.stats().backlog.messages === 0, 5000));
  });

  it('counts the rows only the corrupt file held as dropped (corrupt) and forwards what comes after', async (t) => {
    const s = await scenario(t);
    s.proxy.refuse();
    const first = s.bridge();
    await first.start();
    const pub = new Publisher(s.local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(100);
    assert.ok(await s.collector.until(() => first.stats().backlog.messages === 100, 5000), 'all 100 cached');
    await first.close();

    // A new run: the 100 rows are on disk only.
    const bridge = s.bridge();
    await bridge.start();
    assert.equal(bridge.stats().backlog.messages, 100);
    corruptMessageTable(join(s.dir, 'bridge-edge1.db'));
    const drops: Array<[string, number]> = [];
    bridge.on('drop', (reason, n) => drops.push([reason, n]));
    const reset = once<[string, string]>(bridge, 'cacheReset');
    s.proxy.pass(); // replay reads the damaged table
    const [, movedTo] = await reset;
    assert.ok(existsSync(movedTo));
    assert.deepEqual(drops, [['corrupt', 100]]);
    assert.equal(bridge.stats().drops.corrupt, 100);

    const before = pub.acked.length;
    await pub.burst(20);
    assert.ok(await s.collector.until(() => s.collector.has(pub.acked.slice(before)), 10_000));
    checkDelivery(pub.acked, s.collector.received, { maxDuplicates: 0, allowedMissing: 100 });
  });
});
