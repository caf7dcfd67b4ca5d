import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { listenerSchema } from '../../src/config/schema.js';
import { loadConfigFile, parseConfigText, resolveConfig } from '../../src/config/load.js';
import { isTernError, type ErrorCode } from '../../src/errors.js';

/** Run fn, assert it throws the TernError `code`, return its message. */
function errorOf(fn: () => unknown, code: ErrorCode): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isTernError(err, code), `expected ${code}, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected ${code}, but nothing was thrown`);
}

/** The message lines that name `path` (one problem per line). */
function linesFor(message: string, path: string): string[] {
  return message.split('\n').filter((l) => l.includes(`: ${path}: `));
}

describe('parseConfigText: valid files', () => {
  test('an empty file gives the defaults', () => {
    assert.deepEqual(parseConfigText('', 'empty.toml'), resolveConfig({}));
  });

  test('snake_case keys in the file land on the camelCase schema keys', () => {
    const config = parseConfigText(
      [
        '[limits]',
        'max_packet_size = 1024',
        'connect_timeout_ms = 500',
        '[mqtt]',
        'allow_zero_length_client_id = false',
        '[[listeners]]',
        'port = 0',
        'max_connections = 7',
      ].join('\n'),
      'ok.toml',
    );
    assert.equal(config.limits.maxPacketSize, 1024);
    assert.equal(config.limits.connectTimeoutMs, 500);
    assert.equal(config.mqtt.allowZeroLengthClientId, false);
    assert.deepEqual(config.listeners, [{ ...listenerSchema.parse({}), port: 0, maxConnections: 7 }]);
    assert.equal(config.limits.maxInflight, 20, 'unset keys keep their defaults');
  });

  test('the result is deep-frozen', () => {
    const config = parseConfigText('[[listeners]]\nport = 0\n', 'f.toml');
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.limits));
    assert.ok(Object.isFrozen(config.listeners));
    assert.ok(Object.isFrozen(config.listeners[0]));
    assert.throws(() => {
      (config.limits as { maxInflight: number }).maxInflight = 1;
    }, TypeError);
  });
});

describe('parseConfigText: invalid files name file, line, key and expectation', () => {
  test('an unknown key suggests the closest known key', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_inflght = 5\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:2: limits\.max_inflght: unknown key; did you mean max_inflight\?/);
  });

  test('an unknown key with nothing close lists the valid keys', () => {
    const msg = errorOf(() => parseConfigText('\n\n[log]\ncolour = "red"\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:4: log\.colour: unknown key; expected one of level, format/);
  });

  test('an unknown table is reported at its header', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_queued = 1\n\n[limitz]\nx = 1\n', 't.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /t\.toml:4: limitz: unknown key; did you mean limits\?/);
  });

  test('a camelCase key is not accepted in a file and points to its snake_case spelling', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmaxInflight = 5\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:2: limits\.maxInflight: unknown key; did you mean max_inflight\?/);
  });

  test('a wrong type says what is expected and what was found', () => {
    const msg = errorOf(() => parseConfigText('[limits]\n\nmax_inflight = "lots"\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:3: limits\.max_inflight: expected an integer between 1 and 65535, got "lots"/);
  });

  test('an out-of-range value says the allowed range', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_topic_levels = 0\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:2: limits\.max_topic_levels: expected an integer >= 1, got 0/);
  });

  test('a fractional number where an integer is expected is refused', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_queued = 1.5\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:2: limits\.max_queued: expected an integer >= 0, got 1\.5/);
  });

  test('an enum value lists the allowed choices', () => {
    const msg = errorOf(() => parseConfigText('[storage]\nbackend = "postgres"\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:2: storage\.backend: expected one of "memory", "sqlite", "redis", got "postgres"/);
  });

  test('a table given as a scalar is a wrong type', () => {
    const msg = errorOf(() => parseConfigText('limits = 5\n', 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:1: limits: expected a table, got 5/);
  });

  test('errors inside [[listeners]] carry the element index and the line of the key', () => {
    const text = [
      '[[listeners]]', // 1
      'port = 1883', // 2
      '', // 3
      '[[listeners]]', // 4
      'host = "0.0.0.0"', // 5
      'port = "x"', // 6
      'tls = true', // 7
    ].join('\n');
    const msg = errorOf(() => parseConfigText(text, 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:6: listeners\[1\]\.port: expected an integer between 0 and 65535, got "x"/);
    assert.match(msg, /tern\.toml:7: listeners\[1\]\.tls: unknown key; expected one of type, host, port, max_connections/);
  });

  test('errors inside inline tables and arrays point at the right line', () => {
    const text = [
      'listeners = [', // 1
      '  { port = 1883 },', // 2
      '  { port = 65536 },', // 3
      ']', // 4
      'mqtt = { max_qos = 3 }', // 5
      'limits.max_inflight = 0', // 6
    ].join('\n');
    const msg = errorOf(() => parseConfigText(text, 'tern.toml'), 'ERR_CONFIG_INVALID');
    assert.match(msg, /tern\.toml:3: listeners\[1\]\.port: expected an integer between 0 and 65535, got 65536/);
    assert.match(msg, /tern\.toml:5: mqtt\.max_qos: expected one of 0, 1, 2, got 3/);
    assert.match(msg, /tern\.toml:6: limits\.max_inflight: expected an integer between 1 and 65535, got 0/);
  });

  test('every problem is reported, one per line, in file order', () => {
    const text = [
      '[log]', // 1
      'level = "loud"', // 2
      '[limits]', // 3
      'max_inflght = 5', // 4
      'max_queued = -1', // 5
    ].join('\n');
    const msg = errorOf(() => parseConfigText(text, 'tern.toml'), 'ERR_CONFIG_INVALID');
    const lines = msg.split('\n');
    assert.match(lines[0]!, /3 problems in tern\.toml/);
    assert.deepEqual(
      lines.slice(1).map((l) => /tern\.toml:(\d+): (\S+):/.exec(l)?.slice(1, 3)),
      [
        ['2', 'log.level'],
        ['4', 'limits.max_inflght'],
        ['5', 'limits.max_queued'],
      ],
    );
    assert.equal(linesFor(msg, 'log.level').length, 1);
  });

  test('a TOML syntax error is ERR_CONFIG_PARSE with file, line and column', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_inflight = 5\nmax_queued = = 3\n', 'bad.toml'), 'ERR_CONFIG_PARSE');
    assert.match(msg, /bad\.toml:3:\d+: /);
  });

  test('a duplicate key is a syntax error', () => {
    const msg = errorOf(() => parseConfigText('[limits]\nmax_queued = 1\nmax_queued = 2\n', 'dup.toml'), 'ERR_CONFIG_PARSE');
    assert.match(msg, /dup\.toml:3:\d+: /);
  });
});

describe('loadConfigFile', () => {
  test('reads and parses a file', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'tern.toml');
    await writeFile(file, '[limits]\nmax_inflight = 7\n');
    const config = await loadConfigFile(file);
    assert.equal(config.limits.maxInflight, 7);
  });

  test('errors in a file name the path it was loaded from', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'tern.toml');
    await writeFile(file, '[limits]\nmax_inflight = 0\n');
    await assert.rejects(loadConfigFile(file), (err: unknown) => {
      assert.ok(isTernError(err, 'ERR_CONFIG_INVALID'));
      assert.ok(err.message.includes(`${file}:2: limits.max_inflight`), err.message);
      return true;
    });
  });

  test('a missing file is ERR_CONFIG_READ naming the file', async () => {
    const file = join(tmpdir(), `tern-missing-${process.pid}.toml`);
    await assert.rejects(loadConfigFile(file), (err: unknown) => {
      assert.ok(isTernError(err, 'ERR_CONFIG_READ'));
      assert.ok(err.message.includes(file));
      assert.match(err.message, /ENOENT/);
      return true;
    });
  });

  test('a directory is ERR_CONFIG_READ', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await assert.rejects(loadConfigFile(dir), (err: unknown) => isTernError(err, 'ERR_CONFIG_READ') && err.message.includes(dir));
  });

  test('an unreadable file is ERR_CONFIG_READ', { skip: process.getuid?.() === 0 ? 'root can read any file' : false }, async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-config-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'secret.toml');
    await writeFile(file, '');
    await chmod(file, 0o000);
    await assert.rejects(loadConfigFile(file), (err: unknown) => isTernError(err, 'ERR_CONFIG_READ') && /EACCES/.test(err.message));
  });
});

describe('resolveConfig (programmatic options)', () => {
  test('fills defaults and freezes', () => {
    const config = resolveConfig({ limits: { maxInflight: 3 } });
    assert.equal(config.limits.maxInflight, 3);
    assert.equal(config.limits.maxQueued, 1000);
    assert.ok(Object.isFrozen(config.limits));
  });

  test('reports problems with camelCase paths and suggestions', () => {
    const msg = errorOf(
      () => resolveConfig({ limits: { maxInflight: 0, maxInflght: 1 }, listeners: [{ port: -1 }] } as never),
      'ERR_CONFIG_INVALID',
    );
    assert.match(msg, /3 problems/);
    assert.match(msg, /\n {2}limits\.maxInflight: expected an integer between 1 and 65535, got 0/);
    assert.match(msg, /\n {2}limits\.maxInflght: unknown key; did you mean maxInflight\?/);
    assert.match(msg, /\n {2}listeners\[0\]\.port: expected an integer between 0 and 65535, got -1/);
  });

  test('accepts a resolved config again unchanged', () => {
    const config = resolveConfig({ listeners: [{ port: 0 }] });
    assert.deepEqual(resolveConfig(config), config);
  });
});
