import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkConfig } from '../../src/config/check.js';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import { listenerSchema } from '../../src/config/schema.js';
import { isTernError } from '../../src/errors.js';

const config = (listeners: Array<{ host?: string; port: number }>) =>
  // checkConfig runs on schema output; build it without the cross-field pass
  ({ ...resolveConfig({}), listeners: listeners.map((l) => ({ ...listenerSchema.parse({}), ...l })) });

test('two listeners on the same host and port are refused', () => {
  const issues = checkConfig(config([{ port: 1883 }, { port: 1884 }, { port: 1883 }]));
  assert.deepEqual(issues.map((i) => i.path), [['listeners', 2, 'port']]);
  assert.match(issues[0]!.message, /127\.0\.0\.1:1883 is already used by listener 0/);
});

test('a wildcard address clashes with any host on the same port', () => {
  const issues = checkConfig(config([{ host: '10.0.0.1', port: 1883 }, { host: '0.0.0.0', port: 1883 }]));
  assert.equal(issues.length, 1);
});

test('different hosts on one port, and several port 0 listeners, are fine', () => {
  assert.deepEqual(checkConfig(config([{ host: '10.0.0.1', port: 1883 }, { host: '10.0.0.2', port: 1883 }])), []);
  assert.deepEqual(checkConfig(config([{ port: 0 }, { port: 0 }])), []);
});

test('cross-field problems in a file are reported with file and line like schema errors', () => {
  const text = '[[listeners]]\nport = 1883\n[[listeners]]\nport = 1883\n';
  assert.throws(
    () => parseConfigText(text, 'dup.toml'),
    (err: unknown) => isTernError(err, 'ERR_CONFIG_INVALID') && /dup\.toml:4: listeners\[1\]\.port: 127\.0\.0\.1:1883 is already used/.test(err.message),
  );
});

test('resolveConfig applies the cross-field checks too', () => {
  assert.throws(() => resolveConfig({ listeners: [{ port: 1883 }, { port: 1883 }] }), (err: unknown) =>
    isTernError(err, 'ERR_CONFIG_INVALID') && err.message.includes('listeners[1].port'),
  );
});
