/** The NDJSON message log: one JSON record per line, size-based rotation, bounded buffer. */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pino } from 'pino';
import type { MessageRecord } from '../../src/ops/message-record.js';
import { FileSink } from '../../src/ops/sinks/file-sink.js';

const T = { timeout: 10_000 };
const log = pino({ level: 'silent' });

function record(i: number): MessageRecord {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    topic: `t/${i}`,
    qos: 0,
    retain: false,
    client_id: 'c',
    payload: `p${String(i).padStart(3, '0')}`,
    payload_encoding: 'utf8',
    payload_bytes: 4,
    content_type: null,
  };
}

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-file-sink-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function lines(path: string): Promise<MessageRecord[]> {
  const text = await readFile(path, 'utf8');
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as MessageRecord);
}

test('records are appended as one JSON object per line', T, async (t) => {
  const path = join(await tempDir(t), 'sub', 'messages.ndjson');
  const sink = new FileSink({ path, maxBytes: 1 << 20, maxFiles: 2, maxBuffer: 100, log });
  await sink.open();
  for (let i = 0; i < 3; i++) sink.push(record(i));
  await sink.close();
  assert.deepEqual(await lines(path), [record(0), record(1), record(2)]);
  assert.equal(sink.stats.written, 3);
});

test('the file rotates before it would pass maxBytes, keeping maxFiles rotated files, newest first', T, async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'm.ndjson');
  const lineBytes = Buffer.byteLength(JSON.stringify(record(0)) + '\n');
  const sink = new FileSink({ path, maxBytes: lineBytes * 3, maxFiles: 2, maxBuffer: 100, log });
  await sink.open();
  for (let i = 0; i < 11; i++) {
    sink.push(record(i));
    if (i % 4 === 0) await sink.flush(); // rotation across batches as well as within one
  }
  await sink.close();
  assert.deepEqual((await readdir(dir)).sort(), ['m.ndjson', 'm.ndjson.1', 'm.ndjson.2']);
  const topics = async (p: string): Promise<string[]> => (await lines(p)).map((r) => r.topic);
  assert.deepEqual(await topics(path), ['t/9', 't/10']);
  assert.deepEqual(await topics(`${path}.1`), ['t/6', 't/7', 't/8']);
  assert.deepEqual(await topics(`${path}.2`), ['t/3', 't/4', 't/5']);
  for (const p of [path, `${path}.1`, `${path}.2`]) assert.ok((await readFile(p)).length <= lineBytes * 3);
  assert.equal(sink.stats.written, 11);
});

test('past maxBuffer waiting lines, new records are dropped and counted', T, async (t) => {
  const path = join(await tempDir(t), 'm.ndjson');
  const sink = new FileSink({ path, maxBytes: 1 << 20, maxFiles: 1, maxBuffer: 5, log });
  await sink.open();
  for (let i = 0; i < 8; i++) sink.push(record(i)); // same tick: nothing written yet
  assert.equal(sink.stats.dropped, 3);
  assert.equal(sink.stats.buffered, 5);
  await sink.close();
  assert.equal((await lines(path)).length, 5);
  assert.deepEqual({ ...sink.stats }, { name: 'file', written: 5, dropped: 3, failed: 0, buffered: 0 });
});
