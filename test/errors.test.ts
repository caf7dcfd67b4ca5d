import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERRORS, TernError, isTernError, ternError } from '../src/errors.js';

test('every error code is documented in docs/errors.md and every documented code exists', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const documented = new Set([...doc.matchAll(/^### (ERR_[A-Z0-9_]+)/gm)].map((m) => m[1]));
  const registered = new Set(Object.keys(ERRORS));
  for (const code of registered) assert.ok(documented.has(code), `${code} missing from docs/errors.md`);
  for (const code of documented) assert.ok(registered.has(code!), `${code} documented but not in src/errors.ts`);
});

test('ternError carries the code, the reason code and the detail', () => {
  const err = ternError('ERR_MQTT_MALFORMED', 'bad varint');
  assert.ok(err instanceof TernError);
  assert.equal(err.code, 'ERR_MQTT_MALFORMED');
  assert.equal(err.reasonCode, 0x81);
  assert.equal(err.message, 'malformed packet: bad varint');
  assert.ok(isTernError(err, 'ERR_MQTT_MALFORMED'));
  assert.ok(!isTernError(err, 'ERR_MQTT_PROTOCOL'));
  assert.equal(ternError('ERR_CONFIG_INVALID').reasonCode, undefined);
});
