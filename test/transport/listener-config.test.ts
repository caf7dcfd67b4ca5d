import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import { isTernError } from '../../src/errors.js';

const invalid = (pattern: RegExp) => (err: unknown) => isTernError(err, 'ERR_CONFIG_INVALID') && pattern.test((err as Error).message);

test('no listener configured binds tcp 127.0.0.1:1883 only (secure default)', () => {
  const [only, ...rest] = resolveConfig({}).listeners;
  assert.deepEqual([only?.type, only?.host, only?.port, rest.length], ['tcp', '127.0.0.1', 1883, 0]);
});

test('tls and wss listeners need cert_file and key_file; errors name the key', () => {
  assert.throws(() => parseConfigText('[[listeners]]\ntype = "tls"\nport = 8883\n', 't.toml'), invalid(/t\.toml:1: listeners\[0\]\.cert_file/));
  assert.throws(() => resolveConfig({ listeners: [{ type: 'wss', certFile: 'c.pem' }] }), invalid(/listeners\[0\]\.keyFile/));
});

test('client-certificate and PROXY options are refused where they cannot apply', () => {
  const tls = { type: 'tls' as const, certFile: 'c', keyFile: 'k' };
  assert.throws(() => resolveConfig({ listeners: [{ ...tls, requireCertificate: true }] }), invalid(/listeners\[0\]\.caFile/));
  assert.throws(() => resolveConfig({ listeners: [{ ...tls, caFile: 'ca', useIdentityAsUsername: true }] }), invalid(/listeners\[0\]\.requireCertificate/));
  assert.throws(() => resolveConfig({ listeners: [{ type: 'tcp', caFile: 'ca' }] }), invalid(/listeners\[0\]\.caFile/));
  assert.throws(() => resolveConfig({ listeners: [{ type: 'ws', proxyProtocol: true }] }), invalid(/listeners\[0\]\.proxyProtocol/));
  assert.throws(() => resolveConfig({ listeners: [{ type: 'ws', path: 'mqtt' }] }), invalid(/listeners\[0\]\.path/));
  assert.doesNotThrow(() => resolveConfig({ listeners: [{ ...tls, caFile: 'ca', requireCertificate: true, useIdentityAsUsername: true, proxyProtocol: true }] }));
});
