import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { installSignalHandlers, type SignalSource } from '../../src/cli/signals.js';
import { createLogger } from '../../src/observability/logger.js';

function setup(opts: { close?: () => Promise<void>; reload?: () => void; closeTimeoutMs?: number | (() => number) } = {}) {
  const source = new EventEmitter();
  const exits: number[] = [];
  const logLines: Array<{ msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logLines.push(JSON.parse(chunk.toString()) as { msg: string });
      cb();
    },
  });
  let exited: (code: number) => void = () => {};
  const exitedOnce = new Promise<number>((resolve) => (exited = resolve));
  const remove = installSignalHandlers({
    close: opts.close ?? (() => Promise.resolve()),
    ...(opts.reload ? { reload: opts.reload } : {}),
    ...(opts.closeTimeoutMs !== undefined ? { closeTimeoutMs: opts.closeTimeoutMs } : {}),
    log: createLogger({ level: 'info', format: 'json' }, { destination: sink }),
    exit: (code) => {
      exits.push(code);
      exited(code);
    },
    source: source as unknown as SignalSource,
  });
  return { source, exits, logLines, exitedOnce, remove };
}

test('SIGTERM closes, then exits 0', { timeout: 5000 }, async () => {
  let closed = false;
  const s = setup({ close: async () => void (closed = true) });
  s.source.emit('SIGTERM', 'SIGTERM');
  assert.equal(await s.exitedOnce, 0);
  assert.ok(closed);
});

test('SIGINT while close fails exits 1', { timeout: 5000 }, async () => {
  const s = setup({ close: () => Promise.reject(new Error('stuck')) });
  s.source.emit('SIGINT', 'SIGINT');
  assert.equal(await s.exitedOnce, 1);
});

test('a second signal during close forces exit 1 at once', { timeout: 5000 }, () => {
  const s = setup({ close: () => new Promise<void>(() => {}) });
  s.source.emit('SIGTERM', 'SIGTERM');
  assert.deepEqual(s.exits, []);
  s.source.emit('SIGINT', 'SIGINT');
  assert.deepEqual(s.exits, [1]);
});

test('a close that never finishes exits 1 after the close timeout', { timeout: 5000 }, async () => {
  const s = setup({ close: () => new Promise<void>(() => {}), closeTimeoutMs: 20 });
  s.source.emit('SIGTERM', 'SIGTERM');
  assert.equal(await s.exitedOnce, 1);
  assert.ok(s.logLines.some((l) => /did not finish in time/.test(l.msg)));
});

test('a close timeout given as a function is read when the signal comes (a reloaded grace period)', { timeout: 5000 }, async () => {
  let timeoutMs = 60_000;
  const s = setup({ close: () => new Promise<void>(() => {}), closeTimeoutMs: () => timeoutMs });
  timeoutMs = 20;
  s.source.emit('SIGTERM', 'SIGTERM');
  assert.equal(await s.exitedOnce, 1);
});

test('SIGHUP calls reload and does not exit', { timeout: 5000 }, () => {
  let reloads = 0;
  const s = setup({ reload: () => void reloads++ });
  s.source.emit('SIGHUP', 'SIGHUP');
  assert.deepEqual(s.exits, []);
  assert.ok(s.logLines.some((l) => /SIGHUP/.test(l.msg)));
  return new Promise<void>((resolve) => setImmediate(() => {
    assert.equal(reloads, 1);
    resolve();
  }));
});

test('the returned function removes the handlers', () => {
  const s = setup();
  assert.equal(s.source.listenerCount('SIGTERM'), 1);
  s.remove();
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) assert.equal(s.source.listenerCount(sig), 0);
});
