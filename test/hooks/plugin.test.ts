import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { resolveConfig } from '../../src/config/load.js';
import { isTernError, type ErrorCode } from '../../src/errors.js';
import { loadPlugins } from '../../src/hooks/plugin.js';
import { HookRegistry } from '../../src/hooks/registry.js';
import type { HookClient } from '../../src/hooks/types.js';

const client: HookClient = { clientId: 'c', username: undefined, info: { remoteAddress: '10.1.1.1', remotePort: 1, listener: 'l' } };

/** Write plugin modules into a temp dir; returns the dir. */
function modules(t: { after(fn: () => void): void }, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-plugins-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

test('plugins load from config in order, get their options, and their hooks run first-come', async (t) => {
  const dir = modules(t, {
    'prefix.mjs': `export const seen = [];
    export const plugin = { name: 'prefix', apiVersion: 1, register(api, o) {
      api.addHook('authorizePublish', (c, m) => m.topic.startsWith(o.allowedPrefix) ? 'allow' : 'defer');
      api.on('connect', (c) => seen.push(api.instance + ':' + c.clientId));
    } };`,
    'deny-all.mjs': `export default { name: 'deny-all', apiVersion: 1, register(api) { api.addHook('authorizePublish', () => 'deny'); } };`,
  });
  // Through the real config schema: [plugins.NAME] tables keep their order.
  const config = resolveConfig({
    plugins: { prefix: { module: './prefix.mjs', options: { allowedPrefix: 'public/' } }, denyAll: { module: './deny-all.mjs' } },
  });
  const hooks = new HookRegistry();
  await loadPlugins(hooks, config.plugins, { baseDir: dir });
  assert.equal((await hooks.authorizePublish(client, { topic: 'public/x', payload: Buffer.alloc(0), qos: 0, retain: false })).allowed, true);
  assert.equal((await hooks.authorizePublish(client, { topic: 'private/x', payload: Buffer.alloc(0), qos: 0, retain: false })).allowed, false);
  hooks.emit('connect', client);
  const mod = (await import(pathToFileURL(join(dir, 'prefix.mjs')).href)) as { seen: string[] };
  assert.deepEqual(mod.seen, ['prefix:c']);
});

test('bad plugins fail loading with coded errors', async (t) => {
  const dir = modules(t, {
    'v2.mjs': `export const plugin = { name: 'future', apiVersion: 2, register() {} };`,
    'shapeless.mjs': `export const plugin = { name: 'x' };`,
    'typo.mjs': `export const plugin = { name: 'typo', apiVersion: 1, register(api) { api.addHook('onPublish', () => 'allow'); } };`,
    'bad-event.mjs': `export const plugin = { name: 'ev', apiVersion: 1, register(api) { api.on('connected', () => {}); } };`,
    'throws.mjs': `export const plugin = { name: 't', apiVersion: 1, register() { throw new Error('no url'); } };`,
  });
  const cases: Array<[string, ErrorCode]> = [
    ['./v2.mjs', 'ERR_PLUGIN_API_VERSION'],
    ['./shapeless.mjs', 'ERR_PLUGIN_INVALID'],
    ['./typo.mjs', 'ERR_HOOK_UNKNOWN'],
    ['./bad-event.mjs', 'ERR_HOOK_UNKNOWN'],
    ['./throws.mjs', 'ERR_PLUGIN_LOAD'],
    ['./missing.mjs', 'ERR_PLUGIN_LOAD'],
    ['no-such-package-tern-test', 'ERR_PLUGIN_LOAD'],
  ];
  for (const [module, code] of cases) {
    await assert.rejects(loadPlugins(new HookRegistry(), { p: { module, options: {} } }, { baseDir: dir }), (err) => isTernError(err, code), module);
  }
});
