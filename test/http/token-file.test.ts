/**
 * `http.token_file`: the admin token read from a file (a mounted secret)
 * instead of the configuration file, against a real broker and HTTP listener.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import { call, startOps } from './ops-helpers.js';

const T = { timeout: 15_000 };

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-token-file-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a token file counts as credentials on a non-loopback address, and its token (newline dropped) is the one required', T, async (t) => {
  const tokenFile = join(await tempDir(t), 'token');
  await writeFile(tokenFile, 'from-the-file\n');
  const { base } = await startOps(t, { http: { host: '0.0.0.0', tokenFile } });
  assert.equal((await call(base, 'GET', '/healthz')).status, 200, 'the health checks stay open');
  assert.equal((await call(base, 'GET', '/api/v1/overview')).status, 401);
  assert.equal((await call(base, 'GET', '/api/v1/overview', undefined, { authorization: 'Bearer from-the-fil' })).status, 401);
  assert.equal((await call(base, 'GET', '/api/v1/overview', undefined, { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await call(base, 'GET', '/api/v1/overview', undefined, { authorization: 'Bearer from-the-file' })).status, 200);
  assert.equal((await call(base, 'GET', '/api/v1/overview?access_token=from-the-file')).status, 200);
});

test('a missing token file fails start with an error naming the key and the file', T, async (t) => {
  const tokenFile = join(await tempDir(t), 'no-such-token');
  await assert.rejects(startOps(t, { http: { host: '0.0.0.0', tokenFile } }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    assert.ok(err.message.includes(`http.token_file ${tokenFile}`), err.message);
    assert.match(err.message, /no such file/);
    return true;
  });
});

test('an empty token file fails start: it must not leave the listener open', T, async (t) => {
  const tokenFile = join(await tempDir(t), 'token');
  await writeFile(tokenFile, ' \n');
  await assert.rejects(startOps(t, { http: { tokenFile } }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    assert.ok(err.message.includes(`http.token_file ${tokenFile}: the file holds no token`), err.message);
    return true;
  });
});

test('token and token_file together are a configuration error at the token_file line', () => {
  const text = ['[http]', 'enabled = true', 'token = "abc"', 'token_file = "/run/secrets/tern/token"', ''].join('\n');
  assert.throws(() => parseConfigText(text, 'both.toml'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    assert.match(err.message, /both\.toml:4: http\.token_file: set http\.token or http\.token_file, not both/);
    return true;
  });
  assert.equal(parseConfigText('[http]\ntoken_file = "/run/secrets/tern/token"\n', 'one.toml').http.tokenFile, '/run/secrets/tern/token');
});
