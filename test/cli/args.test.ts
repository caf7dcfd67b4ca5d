import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCliArgs } from '../../src/cli/args.js';
import { isTernError } from '../../src/errors.js';

const usageError = (argv: string[], pattern: RegExp) =>
  assert.throws(() => parseCliArgs(argv), (err: unknown) => isTernError(err, 'ERR_CLI_USAGE') && pattern.test(err.message));

test('no command means the broker with defaults', () => {
  assert.deepEqual(parseCliArgs([]), {
    kind: 'broker',
    configFile: undefined,
    port: undefined,
    host: undefined,
    logLevel: undefined,
    repair: false,
  });
});

test('broker flags, short and long', () => {
  assert.deepEqual(parseCliArgs(['broker', '-c', 'a.toml', '-p', '0', '-l', '0.0.0.0', '--log-level', 'debug', '--repair']), {
    kind: 'broker',
    configFile: 'a.toml',
    port: 0,
    host: '0.0.0.0',
    logLevel: 'debug',
    repair: true,
  });
  assert.deepEqual(parseCliArgs(['--config=b.toml', '--port', '1884', '--listen', '::1']), {
    kind: 'broker',
    configFile: 'b.toml',
    port: 1884,
    host: '::1',
    logLevel: undefined,
    repair: false,
  });
});

test('check-config needs -c', () => {
  assert.deepEqual(parseCliArgs(['check-config', '-c', 'x.toml']), { kind: 'check-config', configFile: 'x.toml' });
  usageError(['check-config'], /needs -c FILE/);
});

test('passwd gets its arguments untouched', () => {
  assert.deepEqual(parseCliArgs(['passwd', '-b', 'f', 'user', 'pw', '--weird']), {
    kind: 'passwd',
    argv: ['-b', 'f', 'user', 'pw', '--weird'],
  });
});

test('help and version', () => {
  assert.deepEqual(parseCliArgs(['--help']), { kind: 'help' });
  assert.deepEqual(parseCliArgs(['help']), { kind: 'help' });
  assert.deepEqual(parseCliArgs(['broker', '-h']), { kind: 'help' });
  assert.deepEqual(parseCliArgs(['--version']), { kind: 'version' });
});

test('unknown commands, flags and bad values are usage errors', () => {
  usageError(['serve'], /unknown command 'serve'/);
  usageError(['--bogus'], /--bogus/);
  usageError(['check-config', '-c', 'x', '-p', '1'], /'-p'/);
  usageError(['-p', 'abc'], /--port expects an integer between 0 and 65535, got "abc"/);
  usageError(['-p', '65536'], /--port/);
  usageError(['--log-level', 'loud'], /--log-level expects one of trace, debug/);
  usageError(['broker', 'extra'], /extra/);
  usageError(['-c'], /-c/);
});
