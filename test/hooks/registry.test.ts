import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ReasonCode } from '../../src/codec/constants.js';
import { isTernError } from '../../src/errors.js';
import { HookRegistry, isPromise } from '../../src/hooks/registry.js';
import type { AuthenticateRequest, HookClient, HookFunctions, HookMessage } from '../../src/hooks/types.js';

const client: HookClient = { clientId: 'c1', username: 'u', info: { remoteAddress: '10.0.0.9', remotePort: 1, listener: 'tcp' } };
const msg = (topic: string): HookMessage => ({ topic, payload: Buffer.from('x'), qos: 0, retain: false });
const authReq = (over: Partial<AuthenticateRequest> = {}): AuthenticateRequest => ({
  clientId: 'c1', username: 'u', password: Buffer.from('p'), protocolLevel: 5, info: client.info, step: 0, reauthenticate: false, ...over,
});

test('with no hook registered, authorization answers allow synchronously (the fast path)', () => {
  const hooks = new HookRegistry();
  const verdicts = [hooks.authorizePublish(client, msg('a')), hooks.authorizeSubscribe(client, 'a/#', 1), hooks.authorizeRead(client, msg('a'))];
  for (const v of verdicts) {
    assert.equal(isPromise(v), false);
    assert.deepEqual(v, { allowed: true, reasonCode: 0, reason: undefined });
  }
  assert.equal(hooks.hasAuthorizeRead, false);
  assert.equal(hooks.hasMessageHooks, false);
});

test('decision hooks run in order; the first non-defer answer wins; all-defer is deny', async () => {
  const hooks = new HookRegistry();
  const calls: string[] = [];
  hooks.addHook('authorizePublish', (_c, m) => (calls.push('a'), m.topic === 'deny-me' ? 'deny' : 'defer'));
  hooks.addHook('authorizePublish', (_c, m) => (calls.push('b'), m.topic === 'ok' ? 'allow' : 'defer'));
  hooks.addHook('authorizePublish', () => (calls.push('c'), 'allow'));
  assert.equal((hooks.authorizePublish(client, msg('ok')) as { allowed: boolean }).allowed, true);
  assert.deepEqual(calls, ['a', 'b'], 'the third hook was not asked');
  calls.length = 0;
  assert.equal((hooks.authorizePublish(client, msg('deny-me')) as { allowed: boolean }).allowed, false);
  assert.deepEqual(calls, ['a']);

  const deferring = new HookRegistry();
  deferring.addHook('authorizeSubscribe', () => 'defer');
  deferring.addHook('authorizeSubscribe', async () => 'defer' as const);
  const v = deferring.authorizeSubscribe(client, 'x', 0);
  assert.ok(isPromise(v), 'an async hook makes the run a promise');
  assert.deepEqual(await v, { allowed: false, reasonCode: ReasonCode.NOT_AUTHORIZED, reason: 'no hook allowed it' });
});

test('publishing to a $ topic is refused even when a hook would allow it', () => {
  const hooks = new HookRegistry();
  hooks.addHook('authorizePublish', () => 'allow');
  for (const topic of ['$SYS/broker/uptime', '$share/g/t', '$custom']) {
    const v = hooks.authorizePublish(client, msg(topic)) as { allowed: boolean; reasonCode: number };
    assert.deepEqual([v.allowed, v.reasonCode], [false, ReasonCode.NOT_AUTHORIZED], topic);
  }
  assert.equal((new HookRegistry().authorizeSubscribe(client, '$SYS/#', 0) as { allowed: boolean }).allowed, true, '$SYS stays readable');
});

test('a deny may carry a reason code; a non-error code becomes 0x87', () => {
  const hooks = new HookRegistry();
  hooks.addHook('authorizeSubscribe', (_c, filter) =>
    filter === 'quota' ? { decision: 'deny', reasonCode: ReasonCode.QUOTA_EXCEEDED, reason: 'too many' } : { decision: 'deny', reasonCode: 0x01 });
  assert.deepEqual(hooks.authorizeSubscribe(client, 'quota', 0), { allowed: false, reasonCode: 0x97, reason: 'too many' });
  assert.equal((hooks.authorizeSubscribe(client, 'other', 0) as { reasonCode: number }).reasonCode, 0x87);
});

test('a hook that throws, rejects or answers nonsense denies (fail closed)', async () => {
  const cases: Array<HookFunctions['authorizeRead']> = [
    () => {
      throw new Error('boom');
    },
    () => Promise.reject(new Error('boom')),
    () => 'alow' as never,
    () => ({ decision: 'maybe' }) as never,
  ];
  for (const fn of cases) {
    const hooks = new HookRegistry();
    hooks.addHook('authorizeRead', fn);
    hooks.addHook('authorizeRead', () => 'allow');
    const v = await hooks.authorizeRead(client, msg('t'));
    assert.equal(v.allowed, false, String(fn));
  }
});

test('authenticate: allow with a new username, continue for enhanced auth, and all-defer codes', async () => {
  const hooks = new HookRegistry();
  hooks.addHook('authenticate', (r) => {
    if (r.method === 'TOKEN' && r.step === 0) return { decision: 'continue', authData: Buffer.from('challenge') };
    if (r.method === 'TOKEN') return r.data?.toString() === 'answer' ? { decision: 'allow', username: 'token-user' } : 'deny';
    return 'defer';
  });
  const first = await hooks.authenticate(authReq({ method: 'TOKEN' }));
  assert.deepEqual([first.result, first.reasonCode, first.authData?.toString()], ['continue', 0x18, 'challenge']);
  const second = await hooks.authenticate(authReq({ method: 'TOKEN', step: 1, data: Buffer.from('answer') }));
  assert.deepEqual([second.result, second.username], ['allow', 'token-user']);
  assert.equal((await hooks.authenticate(authReq({ method: 'SCRAM' }))).reasonCode, ReasonCode.BAD_AUTHENTICATION_METHOD);
  assert.equal((await hooks.authenticate(authReq())).reasonCode, ReasonCode.NOT_AUTHORIZED);

  const noMethod = new HookRegistry();
  noMethod.addHook('authenticate', () => ({ decision: 'continue' }));
  assert.equal((await noMethod.authenticate(authReq())).result, 'deny', 'continue needs an authentication method');
});

test('message hooks rewrite in order, null drops, a failing hook drops', async () => {
  const hooks = new HookRegistry();
  hooks.addHook('message', (_c, m) => (m.topic === 'drop' ? null : undefined));
  hooks.addHook('message', (_c, m) => ({ ...m, topic: `tenant/${m.topic}` }));
  hooks.addHook('message', async (_c, m) => ({ ...m, payload: Buffer.from(m.payload.toString().toUpperCase()) }));
  const out = await hooks.transformMessage(client, msg('a'));
  assert.deepEqual([out?.topic, out?.payload.toString()], ['tenant/a', 'X']);
  assert.equal(await hooks.transformMessage(client, msg('drop')), null);

  const failing = new HookRegistry();
  failing.addHook('message', () => {
    throw new Error('bad');
  });
  assert.equal(failing.transformMessage(undefined, msg('a')), null);
  const unchanged = msg('same');
  const keep = new HookRegistry();
  keep.addHook('message', () => undefined);
  assert.equal(keep.transformMessage(client, unchanged), unchanged, 'undefined keeps the very same object');
});

test('unknown hook or event names and non-functions are coded errors', () => {
  const hooks = new HookRegistry();
  assert.throws(() => hooks.addHook('authorise' as never, (() => 'allow') as never), (e) => isTernError(e, 'ERR_HOOK_UNKNOWN'));
  assert.throws(() => hooks.addHook('authenticate', 'allow' as never), (e) => isTernError(e, 'ERR_HOOK_INVALID'));
  assert.throws(() => hooks.on('connected' as never, () => {}), (e) => isTernError(e, 'ERR_HOOK_UNKNOWN'));
});

test('events reach every listener even when one throws', () => {
  const hooks = new HookRegistry();
  const seen: string[] = [];
  assert.equal(hooks.listens('publish'), false);
  hooks.on('publish', () => {
    throw new Error('listener bug');
  });
  hooks.on('publish', (_c, m) => seen.push(m.topic));
  hooks.on('dropped', (_c, m, reason) => seen.push(`${m.topic}:${reason}`));
  assert.equal(hooks.listens('publish'), true);
  hooks.emit('publish', client, msg('t1'));
  hooks.emit('dropped', undefined, msg('t2'), 'queue full');
  assert.deepEqual(seen, ['t1', 't2:queue full']);
});

test('reload() runs every task and returns the failures; close() runs close tasks in reverse', async () => {
  const hooks = new HookRegistry();
  const order: string[] = [];
  hooks.onReload(() => {
    throw new Error('broken file');
  });
  hooks.onReload(() => void order.push('reloaded'));
  hooks.onClose(() => void order.push('close 1'));
  hooks.onClose(async () => void order.push('close 2'));
  const errors = await hooks.reload();
  assert.deepEqual(errors.map((e) => e.message), ['broken file']);
  await hooks.close();
  assert.deepEqual(order, ['reloaded', 'close 2', 'close 1']);
});
