import assert from 'node:assert/strict';
import { test } from 'node:test';
import { lineOf, scanKeyLines } from '../../src/config/key-lines.js';

test('keys in tables, arrays of tables and nested headers map to their lines', () => {
  const text = [
    'top = 1', // 1
    '[a]', // 2
    'x = 1 # comment with key = 2', // 3
    '[[list]]', // 4
    'p = 1', // 5
    '[list.sub]', // 6
    'q = 2', // 7
    '[[list]]', // 8
    '"quoted key" = 3', // 9
    'dotted.key.path = 4', // 10
  ].join('\n');
  const lines = scanKeyLines(text);
  assert.equal(lines.get('top'), 1);
  assert.equal(lines.get('a'), 2);
  assert.equal(lines.get('a.x'), 3);
  assert.equal(lines.get('list'), 4);
  assert.equal(lines.get('list[0]'), 4);
  assert.equal(lines.get('list[0].p'), 5);
  assert.equal(lines.get('list[0].sub'), 6);
  assert.equal(lines.get('list[0].sub.q'), 7);
  assert.equal(lines.get('list[1]'), 8);
  assert.equal(lines.get('list[1]."quoted key"'), 9);
  assert.equal(lines.get('list[1].dotted.key.path'), 10);
  assert.equal(lines.get('key'), undefined, 'text inside a comment is not a key');
});

test('multi-line strings and arrays do not confuse line counting', () => {
  const text = [
    's = """', // 1
    '[not_a_table]', // 2
    'fake = 1', // 3
    '"""', // 4
    'arr = [', // 5
    '  1,', // 6
    '  { k = "v" },', // 7
    ']', // 8
    "lit = '''a", // 9
    "b'''", // 10
    'after = true', // 11
  ].join('\n');
  const lines = scanKeyLines(text);
  assert.equal(lines.get('not_a_table'), undefined);
  assert.equal(lines.get('fake'), undefined);
  assert.equal(lines.get('arr[0]'), 6);
  assert.equal(lines.get('arr[1].k'), 7);
  assert.equal(lines.get('lit'), 9);
  assert.equal(lines.get('after'), 11);
});

test('lineOf falls back to the nearest enclosing key', () => {
  const lines = scanKeyLines('\n[limits]\nmax_queued = 1\n');
  assert.equal(lineOf(lines, ['limits', 'max_queued']), 3);
  assert.equal(lineOf(lines, ['limits', 'not_there']), 2);
  assert.equal(lineOf(lines, ['elsewhere']), undefined);
});
