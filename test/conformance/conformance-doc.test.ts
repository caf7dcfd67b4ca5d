/**
 * docs/conformance.md stays truthful: every statement of both specifications
 * has a row, and every test the document cites still exists under that name.
 * Regenerate with `node --import tsx test/conformance/helpers/conformance-doc.ts --write`.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DOC_PATH, ROOT } from './helpers/conformance-doc.js';
import { V311, V5 } from './helpers/statements.js';

test('docs/conformance.md has a row for every MQTT 5.0 and MQTT 3.1.1 statement', async () => {
  const doc = await readFile(DOC_PATH, 'utf8');
  const v5 = doc.slice(doc.indexOf('## MQTT 5.0'), doc.indexOf('## MQTT 3.1.1'));
  const v311 = doc.slice(doc.indexOf('## MQTT 3.1.1'));
  for (const [id] of V5) assert.ok(v5.includes(`| ${id} |`), `MQTT 5.0 ${id}`);
  for (const [id] of V311) assert.ok(v311.includes(`| ${id} |`), `MQTT 3.1.1 ${id}`);
});

test('every test docs/conformance.md cites exists in its file under that name', async () => {
  const doc = await readFile(DOC_PATH, 'utf8');
  const files = new Map<string, string>();
  const missing: string[] = [];
  for (const m of doc.matchAll(/`([\w./-]+\.test\.ts)`: (?:case: )?(.*?)(?=<br>|\s\|\s*$|$)/gm)) {
    const [, file, name] = m;
    if (file === undefined || name === undefined) continue;
    let text = files.get(file);
    if (text === undefined) {
      text = await readFile(join(ROOT, 'test', file), 'utf8').catch(() => '');
      files.set(file, text);
    }
    const plain = name.replace(/\\\|/g, '|');
    if (!text.includes(plain)) missing.push(`${file}: ${plain}`);
  }
  assert.deepEqual(missing, [], 'regenerate docs/conformance.md');
});
