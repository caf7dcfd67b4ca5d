import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '../../src/observability/logger.js';

function sink(isTTY = false) {
  const chunks: string[] = [];
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk.toString());
        cb();
      },
    }),
    { isTTY },
  );
  return { stream, chunks };
}

test('json format writes one JSON object per line named tern, without pid/hostname', () => {
  const { stream, chunks } = sink();
  const log = createLogger({ level: 'info', format: 'json' }, { destination: stream });
  log.info({ port: 1883 }, 'hello');
  assert.equal(chunks.length, 1, 'written synchronously');
  assert.ok(chunks[0]!.endsWith('\n'));
  const line = JSON.parse(chunks[0]!) as Record<string, unknown>;
  assert.equal(line['name'], 'tern');
  assert.equal(line['msg'], 'hello');
  assert.equal(line['port'], 1883);
  assert.equal('pid' in line, false);
  assert.equal('hostname' in line, false);
});

test('the level filters lower levels', () => {
  const { stream, chunks } = sink();
  const log = createLogger({ level: 'warn', format: 'json' }, { destination: stream });
  log.info('dropped');
  log.warn('kept');
  assert.equal(chunks.length, 1);
  assert.match(chunks[0]!, /kept/);
});

test('pretty format writes human-readable text synchronously', () => {
  const { stream, chunks } = sink();
  const log = createLogger({ level: 'info', format: 'pretty' }, { destination: stream });
  log.info({ port: 1883 }, 'hello pretty');
  assert.equal(chunks.length, 1);
  assert.throws(() => JSON.parse(chunks[0]!));
  assert.match(chunks[0]!, /INFO/);
  assert.match(chunks[0]!, /hello pretty/);
  assert.match(chunks[0]!, /port: 1883/);
});

test('auto is JSON for a pipe and pretty for a terminal', () => {
  const pipe = sink(false);
  createLogger({ level: 'info', format: 'auto' }, { destination: pipe.stream }).info('x');
  assert.doesNotThrow(() => JSON.parse(pipe.chunks[0]!));
  const tty = sink(true);
  createLogger({ level: 'info', format: 'auto' }, { destination: tty.stream }).info('x');
  assert.throws(() => JSON.parse(tty.chunks[0]!));
});
