/**
 * config.example.toml documents every option with its default (P9). These
 * tests keep it true: it must parse to exactly the defaults, mention every
 * schema key, and carry a comment line above each key.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { scanKeyLines } from '../../src/config/key-lines.js';
import { camelToSnake, formatPath } from '../../src/config/keys.js';
import { loadConfigFile, resolveConfig } from '../../src/config/load.js';
import { leafPaths } from '../../src/config/schema-info.js';
import { configSchema } from '../../src/config/schema.js';

const EXAMPLE = new URL('../../config.example.toml', import.meta.url);
// A bridge's keys cannot be set here without adding a bridge (the default is none):
// examples/bridge.toml documents them, and test/bridge checks that file.
const snakePaths = leafPaths(configSchema)
  .map((p) => formatPath(p.map((s) => (typeof s === 'string' ? camelToSnake(s) : s))))
  .filter((p) => !p.startsWith('bridges['))
  .concat('bridges');

test('config.example.toml parses to exactly the defaults', async () => {
  assert.deepEqual(await loadConfigFile(EXAMPLE.pathname), resolveConfig({}));
});

test('config.example.toml sets every key of the schema', async () => {
  const lines = scanKeyLines(await readFile(EXAMPLE, 'utf8'));
  assert.ok(snakePaths.length > 30, 'the schema walk found the keys');
  const missing = snakePaths.filter((p) => !lines.has(p));
  assert.deepEqual(missing, []);
});

test('every key in config.example.toml has a comment line above it', async () => {
  const text = await readFile(EXAMPLE, 'utf8');
  const fileLines = text.split('\n');
  const keyLines = scanKeyLines(text);
  const uncommented = snakePaths.filter((p) => !fileLines[keyLines.get(p)! - 2]?.startsWith('#'));
  assert.deepEqual(uncommented, []);
});
