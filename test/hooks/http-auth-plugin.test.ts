/** examples/plugins/http-auth.ts against a real local HTTP service. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ReasonCode } from '../../src/codec/constants.js';
import { isTernError } from '../../src/errors.js';
import { loadPlugins } from '../../src/hooks/plugin.js';
import { HookRegistry } from '../../src/hooks/registry.js';
import type { AuthenticateRequest } from '../../src/hooks/types.js';

const MODULE = fileURLToPath(new URL('../../examples/plugins/http-auth.ts', import.meta.url));

const request = (username: string | undefined, password?: string): AuthenticateRequest => ({
  clientId: `id-${username}`,
  username,
  password: password === undefined ? undefined : Buffer.from(password),
  protocolLevel: 4,
  info: { remoteAddress: '192.0.2.5', remotePort: 4000, listener: 'tcp:0.0.0.0:1883', transport: 'tcp', loopback: false },
  step: 0,
  reauthenticate: false,
});

/** A tiny auth service: alice/secret allowed by JSON, bob 403, carol 404 (unknown), slow never answers in time. */
async function authService(t: { after(fn: () => unknown): void }): Promise<{ url: string; bodies: Array<Record<string, unknown>> }> {
  const bodies: Array<Record<string, unknown>> = [];
  const server = http.createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    const body = JSON.parse(text) as Record<string, unknown>;
    bodies.push(body);
    switch (body['username']) {
      case 'alice':
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ result: body['password'] === 'secret' ? 'allow' : 'deny' }));
        return;
      case 'bob':
        res.writeHead(403).end();
        return;
      case 'carol':
        res.writeHead(404).end();
        return;
      case 'slow':
        setTimeout(() => res.writeHead(200).end(), 2000).unref();
        return;
      default:
        res.writeHead(500).end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mqtt/auth`, bodies };
}

test('http-auth asks the service and maps JSON results and status codes to decisions', async (t) => {
  const service = await authService(t);
  const hooks = new HookRegistry();
  await loadPlugins(hooks, { httpAuth: { module: MODULE, options: { url: service.url, timeoutMs: 300 } } });
  // A later hook that allows carol shows that 404 defers to the next hook.
  hooks.addHook('authenticate', (r) => (r.username === 'carol' ? 'allow' : 'defer'));

  assert.equal((await hooks.authenticate(request('alice', 'secret'))).result, 'allow');
  assert.deepEqual(service.bodies[0], {
    clientId: 'id-alice', username: 'alice', password: 'secret', address: '192.0.2.5', listener: 'tcp:0.0.0.0:1883', transport: 'tcp', protocolLevel: 4,
  });
  assert.equal((await hooks.authenticate(request('alice', 'wrong'))).result, 'deny');
  const bob = await hooks.authenticate(request('bob', 'x'));
  assert.deepEqual([bob.result, bob.reasonCode], ['deny', ReasonCode.NOT_AUTHORIZED]);
  assert.equal((await hooks.authenticate(request('carol', 'x'))).result, 'allow', '404 deferred to the next hook');
  assert.equal((await hooks.authenticate(request('dave', 'x'))).result, 'deny', '500 -> on_error (deny)');
  const started = Date.now();
  assert.equal((await hooks.authenticate(request('slow', 'x'))).result, 'deny', 'timeout -> on_error (deny)');
  assert.ok(Date.now() - started < 1500, 'the request was cut at timeoutMs');
});

test('http-auth with on_error = "defer" lets the next hook decide when the service is down', async () => {
  const hooks = new HookRegistry();
  await loadPlugins(hooks, { httpAuth: { module: MODULE, options: { url: 'http://127.0.0.1:1/unreachable', onError: 'defer' } } });
  hooks.addHook('authenticate', () => 'allow');
  assert.equal((await hooks.authenticate(request('alice', 'secret'))).result, 'allow');
});

test('http-auth refuses to load without a URL', async () => {
  await assert.rejects(loadPlugins(new HookRegistry(), { httpAuth: { module: MODULE, options: {} } }), (err) => isTernError(err, 'ERR_PLUGIN_LOAD'));
});
