/** The built-in password-file / anonymous / ACL providers, through createSecurity (as the broker builds them). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hashPassword } from '../../src/auth/password-file.js';
import { ReasonCode } from '../../src/codec/constants.js';
import { resolveConfig } from '../../src/config/load.js';
import type { TernConfigInput } from '../../src/config/schema.js';
import { isTernError } from '../../src/errors.js';
import { createSecurity } from '../../src/hooks/security.js';
import type { AuthenticateRequest, HookClient, HookConnectionInfo } from '../../src/hooks/types.js';

const remote: HookConnectionInfo = { remoteAddress: '198.51.100.1', remotePort: 1, listener: 'tcp:0.0.0.0:1883', transport: 'tcp', loopback: false };
const local: HookConnectionInfo = { ...remote, remoteAddress: '127.0.0.1', listener: 'tcp:127.0.0.1:1883', loopback: true };

const req = (info: HookConnectionInfo, username?: string, password?: string): AuthenticateRequest => ({
  clientId: 'c', username, password: password === undefined ? undefined : Buffer.from(password), protocolLevel: 5, info, step: 0, reauthenticate: false,
});
const msg = (topic: string) => ({ topic, payload: Buffer.alloc(0), qos: 0 as const, retain: false });

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-auth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function security(t: { after(fn: () => unknown): void }, input: TernConfigInput) {
  const s = await createSecurity(resolveConfig(input));
  t.after(() => s.close());
  return s;
}

test('allow_anonymous = "loopback" (default): anonymous and unverified usernames only on loopback listeners', async (t) => {
  const { hooks } = await security(t, {});
  assert.equal((await hooks.authenticate(req(local))).result, 'allow');
  assert.equal((await hooks.authenticate(req(local, 'anyone'))).result, 'allow');
  const refused = await hooks.authenticate(req(remote));
  assert.deepEqual([refused.result, refused.reasonCode], ['deny', ReasonCode.NOT_AUTHORIZED]);
  assert.equal((await hooks.authenticate(req(remote, 'anyone', 'pw'))).result, 'deny', 'no password file: a username proves nothing');
  const handled = { remoteAddress: '', remotePort: 0, listener: 'handle()' };
  assert.equal((await hooks.authenticate(req(handled))).result, 'allow', 'broker.handle() streams count as local');

  const open = await security(t, { auth: { allowAnonymous: true } });
  assert.equal((await open.hooks.authenticate(req(remote))).result, 'allow');
  const closed = await security(t, { auth: { allowAnonymous: false } });
  assert.equal((await closed.hooks.authenticate(req(local))).result, 'deny');
});

test('password_file checks usernames (0x86 on a bad password); a verified certificate identity needs no password', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'passwd');
  writeFileSync(file, `alice:${await hashPassword('secret')}\n`);
  const { hooks } = await security(t, { auth: { passwordFile: file, allowAnonymous: false } });
  assert.equal((await hooks.authenticate(req(remote, 'alice', 'secret'))).result, 'allow');
  const bad = await hooks.authenticate(req(remote, 'alice', 'nope'));
  assert.deepEqual([bad.result, bad.reasonCode], ['deny', ReasonCode.BAD_USER_NAME_OR_PASSWORD]);
  assert.equal((await hooks.authenticate(req(remote, 'mallory', 'secret'))).result, 'deny');
  assert.equal((await hooks.authenticate(req(remote))).result, 'deny', 'anonymous refused');
  const tls = { ...remote, transport: 'tls' as const, identity: 'device-7' };
  assert.equal((await hooks.authenticate(req(tls, 'device-7'))).result, 'allow');
  assert.equal((await hooks.authenticate(req(tls, 'someone-else'))).result, 'deny', 'only the certificate identity itself is trusted');
  const enhanced = await hooks.authenticate({ ...req(remote, 'alice', 'secret'), method: 'SCRAM-SHA-256' });
  assert.equal(enhanced.reasonCode, ReasonCode.BAD_AUTHENTICATION_METHOD, 'no provider implements the method');
});

test('acl_file drives authorizePublish/Subscribe/Read; without it the fast path allows', async (t) => {
  const dir = tempDir(t);
  const acl = join(dir, 'acl');
  writeFileSync(acl, 'user alice\ntopic readwrite sensors/#\ntopic read $SYS/#\npattern write clients/%c/status\n');
  const { hooks } = await security(t, { auth: { aclFile: acl } });
  const alice: HookClient = { clientId: 'dev1', username: 'alice', info: local };
  assert.equal((await hooks.authorizePublish(alice, msg('sensors/t'))).allowed, true);
  assert.equal((await hooks.authorizePublish(alice, msg('actuators/t'))).allowed, false);
  assert.equal((await hooks.authorizePublish(alice, msg('clients/dev1/status'))).allowed, true);
  assert.equal((await hooks.authorizePublish(alice, msg('clients/dev2/status'))).allowed, false);
  assert.equal((await hooks.authorizeSubscribe(alice, '$SYS/#', 0)).allowed, true);
  assert.equal((await hooks.authorizePublish(alice, msg('$SYS/broker/x'))).allowed, false, '$SYS is read-only');
  assert.equal((await hooks.authorizeRead(alice, msg('other/t'))).allowed, false);
  assert.equal(hooks.hasAuthorizeRead, true);

  const none = await security(t, {});
  assert.equal(none.hooks.hasAuthorizePublish || none.hooks.hasAuthorizeSubscribe || none.hooks.hasAuthorizeRead, false);
});

test('reload() swaps in good files and keeps the old rules when a file is broken', async (t) => {
  const dir = tempDir(t);
  const passwd = join(dir, 'passwd');
  const acl = join(dir, 'acl');
  writeFileSync(passwd, `alice:${await hashPassword('one')}\n`);
  writeFileSync(acl, 'user alice\ntopic a/#\n');
  const s = await security(t, { auth: { passwordFile: passwd, aclFile: acl, allowAnonymous: false } });
  const alice: HookClient = { clientId: 'c', username: 'alice', info: remote };

  writeFileSync(passwd, `alice:${await hashPassword('two')}\n`);
  writeFileSync(acl, 'user alice\ntopic b/#\n');
  assert.deepEqual(await s.reload(), []);
  assert.equal((await s.hooks.authenticate(req(remote, 'alice', 'two'))).result, 'allow');
  assert.equal((await s.hooks.authorizePublish(alice, msg('b/1'))).allowed, true);
  assert.equal((await s.hooks.authorizePublish(alice, msg('a/1'))).allowed, false);

  writeFileSync(passwd, 'alice:not-a-hash\n');
  writeFileSync(acl, 'user alice\ntopic sometimes c/#\n');
  const errors = await s.reload();
  assert.equal(errors.length, 1, 'the first failure is reported');
  assert.ok(isTernError(errors[0], 'ERR_AUTH_PASSWORD_FILE'));
  assert.equal((await s.hooks.authenticate(req(remote, 'alice', 'two'))).result, 'allow', 'old passwords kept');
  assert.equal((await s.hooks.authorizePublish(alice, msg('b/1'))).allowed, true, 'old ACL kept');
});

test('a broken auth file at startup is an error', async () => {
  await assert.rejects(createSecurity(resolveConfig({ auth: { aclFile: '/nonexistent/acl' } })), (err) => isTernError(err, 'ERR_AUTH_ACL_FILE'));
});
