/**
 * The operations HTTP listener against a real broker and MQTT.js clients:
 * health checks, access control, and every admin API endpoint (docs/api.md).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import type { Ban, BanList } from '../../src/ops/types.js';
import { clientId, connectMqtt, MessageCollector, within } from '../helpers/mqtt-client.js';
import { call, eventually, startOps } from '../http/ops-helpers.js';

const T = { timeout: 15_000 };

test('/healthz and /readyz answer without credentials; /readyz fails while a readiness check fails', T, async (t) => {
  let storageReady = false;
  const { base } = await startOps(t, { http: { token: 'tok' } }, { readiness: [{ name: 'storage', check: () => storageReady }] });
  assert.deepEqual((await call(base, 'GET', '/healthz')).body, { status: 'ok' });
  const notReady = await call(base, 'GET', '/readyz');
  assert.equal(notReady.status, 503);
  assert.deepEqual(notReady.body.checks, [
    { name: 'listeners', ok: true },
    { name: 'running', ok: true },
    { name: 'storage', ok: false },
  ]);
  storageReady = true;
  const ready = await call(base, 'GET', '/readyz');
  assert.equal(ready.status, 200);
  assert.equal(ready.body.status, 'ready');
});

test('every other path needs the bearer token (header or access_token), and says so in a JSON error', T, async (t) => {
  const { base } = await startOps(t, { http: { token: 'tok' } });
  for (const path of ['/metrics', '/api/v1/overview', '/', '/api/v1/nope']) {
    const r = await call(base, 'GET', path);
    assert.equal(r.status, 401, path);
    assert.equal(r.body.error.code, 'unauthorized');
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
  }
  assert.equal((await call(base, 'GET', '/api/v1/overview', undefined, { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await call(base, 'GET', '/api/v1/overview', undefined, { authorization: 'Bearer tok' })).status, 200);
  assert.equal((await call(base, 'GET', '/api/v1/overview?access_token=tok')).status, 200);
});

test('basic auth protects the API and the dashboard, with a Basic challenge', T, async (t) => {
  const { base } = await startOps(t, { http: { username: 'admin', password: 'pw' } });
  const r = await call(base, 'GET', '/api/v1/clients');
  assert.equal(r.status, 401);
  assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="tern"/);
  const good = `Basic ${Buffer.from('admin:pw').toString('base64')}`;
  assert.equal((await call(base, 'GET', '/api/v1/clients', undefined, { authorization: good })).status, 200);
  const page = await fetch(`${base}/`, { headers: { authorization: good } });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>Tern dashboard<\/title>/);
});

test('an HTTP listener on a non-loopback address without credentials is refused at start', T, async (t) => {
  await assert.rejects(startOps(t, { http: { host: '0.0.0.0' } }), { code: 'ERR_CONFIG_INVALID' });
});

test('with tls_cert and tls_key the listener speaks HTTPS', T, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tern-https-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });
  const { ops } = await startOps(t, { http: { tlsCert: cert, tlsKey: key } });
  assert.equal(ops.address?.protocol, 'https');
  const body = await within(
    new Promise<string>((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: ops.address!.port, path: '/healthz', rejectUnauthorized: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    }),
    5000,
    'HTTPS request',
  );
  assert.deepEqual(JSON.parse(body), { status: 'ok' });
});

test('unknown routes answer 404 and wrong methods 405 with an Allow header', T, async (t) => {
  const { base } = await startOps(t);
  const missing = await call(base, 'GET', '/api/v1/nothing');
  assert.deepEqual([missing.status, missing.body.error.code], [404, 'not_found']);
  const wrong = await call(base, 'PUT', '/api/v1/publish');
  assert.deepEqual([wrong.status, wrong.body.error.code, wrong.headers.get('allow')], [405, 'method_not_allowed', 'POST']);
});

test('GET /api/v1/clients lists connected clients with search and paging; bad paging is a 400', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  await connectMqtt(t, mqttUrl, { clientId: 'alpha-1' });
  await connectMqtt(t, mqttUrl, { clientId: 'alpha-2', protocolVersion: 5, keepalive: 30 });
  await connectMqtt(t, mqttUrl, { clientId: 'beta-1', username: 'bob' });
  const all = await call(base, 'GET', '/api/v1/clients');
  assert.equal(all.body.total, 3);
  assert.deepEqual(all.body.items.map((c: { clientId: string }) => c.clientId), ['alpha-1', 'alpha-2', 'beta-1']);
  const a2 = all.body.items[1];
  assert.deepEqual([a2.protocolLevel, a2.keepalive, a2.address], [5, 30, '127.0.0.1']);
  assert.deepEqual((await call(base, 'GET', '/api/v1/clients?search=ALPHA')).body.total, 2);
  assert.deepEqual((await call(base, 'GET', '/api/v1/clients?search=bob')).body.items[0].clientId, 'beta-1');
  assert.deepEqual((await call(base, 'GET', '/api/v1/clients?protocol=5')).body.items.map((c: { clientId: string }) => c.clientId), ['alpha-2']);
  const paged = await call(base, 'GET', '/api/v1/clients?offset=1&limit=1');
  assert.deepEqual([paged.body.total, paged.body.offset, paged.body.limit, paged.body.items.length, paged.body.items[0].clientId], [3, 1, 1, 1, 'alpha-2']);
  for (const q of ['limit=0', 'limit=1001', 'offset=-1', 'limit=abc', 'protocol=6']) {
    const r = await call(base, 'GET', `/api/v1/clients?${q}`);
    assert.deepEqual([r.status, r.body.error.code], [400, 'bad_request'], q);
  }
});

test('GET /api/v1/clients/:id shows address, protocol, keep-alive, subscriptions, in-flight and queue', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  const c = await connectMqtt(t, mqttUrl, { clientId: 'dev/1', protocolVersion: 5, keepalive: 20 });
  await c.subscribeAsync({ 'a/+': { qos: 1 }, 'b/#': { qos: 0, nl: true } });
  const r = await call(base, 'GET', `/api/v1/clients/${encodeURIComponent('dev/1')}`);
  assert.equal(r.status, 200);
  assert.equal(r.body.connected, true);
  assert.deepEqual([r.body.connection.address, r.body.connection.protocolLevel, r.body.connection.keepalive], ['127.0.0.1', 5, 20]);
  assert.deepEqual(
    r.body.session.subscriptionList.map((s: { filter: string; qos: number; noLocal: boolean }) => [s.filter, s.qos, s.noLocal]).sort(),
    [
      ['a/+', 1, false],
      ['b/#', 0, true],
    ],
  );
  assert.deepEqual([r.body.session.inflightList, r.body.session.queuePreview], [[], []]);
  assert.equal((await call(base, 'GET', '/api/v1/clients/nobody')).status, 404);
});

test('POST /api/v1/clients/:id/disconnect kicks the client with DISCONNECT 0x98 (administrative action)', T, async (t) => {
  const { base, mqttUrl, broker } = await startOps(t);
  const c = await connectMqtt(t, mqttUrl, { clientId: 'kick-me', protocolVersion: 5 });
  const reason = new Promise<number | undefined>((resolve) => c.once('disconnect', (p) => resolve(p.reasonCode)));
  const r = await call(base, 'POST', '/api/v1/clients/kick-me/disconnect', {});
  assert.deepEqual(r.body, { clientId: 'kick-me', disconnected: true, sessionEnded: true });
  assert.equal(await within(reason, 3000, 'DISCONNECT'), 0x98);
  assert.equal(broker.connectionCount, 0);
  assert.equal((await call(base, 'POST', '/api/v1/clients/kick-me/disconnect', {})).status, 404);
});

test('a POST without application/json is refused (415), so a cross-site form cannot call it; oversized bodies get 413', T, async (t) => {
  const { base } = await startOps(t, { http: { maxBodyBytes: 64 } });
  const form = await fetch(`${base}/api/v1/clients/x/disconnect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' });
  assert.equal(form.status, 415);
  assert.equal(((await form.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
  const big = await call(base, 'POST', '/api/v1/publish', { topic: 'x', payload: 'y'.repeat(100) });
  assert.deepEqual([big.status, big.body.error.code], [413, 'payload_too_large']);
  const bad = await call(base, 'POST', '/api/v1/publish', '{nope');
  assert.deepEqual([bad.status, bad.body.error.code], [400, 'bad_request']);
});

test('sessions: list with connected=false, details, DELETE ends an offline persistent session', T, async (t) => {
  const { base, mqttUrl, broker } = await startOps(t);
  const p = await connectMqtt(t, mqttUrl, { clientId: 'persist-1', clean: false });
  await p.subscribeAsync('p/#', { qos: 1 });
  await p.endAsync();
  await connectMqtt(t, mqttUrl, { clientId: 'online-1' });
  await eventually(() => broker.core.sessions.get('persist-1')?.link === null, 'persist-1 offline');
  const offline = await call(base, 'GET', '/api/v1/sessions?connected=false');
  assert.deepEqual(offline.body.items.map((s: { clientId: string }) => s.clientId), ['persist-1']);
  assert.deepEqual([offline.body.items[0].persistent, offline.body.items[0].subscriptions], [true, 1]);
  assert.equal((await call(base, 'GET', '/api/v1/sessions')).body.total, 2);
  assert.equal((await call(base, 'GET', '/api/v1/sessions/persist-1')).body.subscriptionList[0].filter, 'p/#');
  assert.deepEqual((await call(base, 'DELETE', '/api/v1/sessions/persist-1')).body, { clientId: 'persist-1', deleted: true });
  assert.equal(broker.core.sessions.has('persist-1'), false);
  assert.equal((await call(base, 'GET', '/api/v1/sessions/persist-1')).status, 404);
  assert.equal((await call(base, 'DELETE', '/api/v1/sessions/persist-1')).status, 404);
  assert.equal((await call(base, 'GET', '/api/v1/sessions?connected=maybe')).status, 400);
});

test('GET /api/v1/subscriptions filters by filter text, by client and by a topic they match', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  const a = await connectMqtt(t, mqttUrl, { clientId: 'sa', protocolVersion: 5 });
  const b = await connectMqtt(t, mqttUrl, { clientId: 'sb', protocolVersion: 5 });
  await a.subscribeAsync(['home/+/temp', 'office/#']);
  await b.subscribeAsync(['home/#', '$share/g1/jobs/+']);
  const list = async (q: string): Promise<string[]> =>
    (await call(base, 'GET', `/api/v1/subscriptions${q}`)).body.items.map((s: { clientId: string; filter: string }) => `${s.clientId} ${s.filter}`);
  assert.deepEqual(await list(''), ['sb $share/g1/jobs/+', 'sb home/#', 'sa home/+/temp', 'sa office/#']);
  assert.deepEqual(await list('?filter=home'), ['sb home/#', 'sa home/+/temp']);
  assert.deepEqual(await list('?clientId=sa'), ['sa home/+/temp', 'sa office/#']);
  assert.deepEqual(await list(`?topic=${encodeURIComponent('home/kitchen/temp')}`), ['sb home/#', 'sa home/+/temp']);
  assert.deepEqual(await list('?topic=jobs/7'), ['sb $share/g1/jobs/+']);
  const shared = (await call(base, 'GET', '/api/v1/subscriptions?topic=jobs/7')).body.items[0];
  assert.equal(shared.shareGroup, 'g1');
});

test('retained messages: list by filter, browse the topic tree, delete one', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  const c = await connectMqtt(t, mqttUrl);
  await c.publishAsync('house/kitchen/temp', '21.5', { retain: true, qos: 1 });
  await c.publishAsync('house/kitchen/hum', '40', { retain: true, qos: 1 });
  await c.publishAsync('house', 'root', { retain: true, qos: 1 });
  await c.publishAsync('bin/blob', Buffer.from([0xff, 0x00, 0xfe]), { retain: true, qos: 1 });
  const list = await call(base, 'GET', `/api/v1/retained?filter=${encodeURIComponent('house/#')}`);
  assert.deepEqual(list.body.items.map((m: { topic: string; payload: string }) => [m.topic, m.payload]), [
    ['house', 'root'],
    ['house/kitchen/hum', '40'],
    ['house/kitchen/temp', '21.5'],
  ]);
  const blob = (await call(base, 'GET', '/api/v1/retained?filter=bin/blob')).body.items[0];
  assert.deepEqual([blob.payload, blob.payloadEncoding, blob.bytes], ['/wD+', 'base64', 3]);
  const root = await call(base, 'GET', '/api/v1/topics');
  assert.deepEqual(root.body.children, [
    { name: 'bin', path: 'bin', retained: false, topics: 1 },
    { name: 'house', path: 'house', retained: true, topics: 3 },
  ]);
  const house = await call(base, 'GET', '/api/v1/topics?prefix=house');
  assert.equal(house.body.message.payload, 'root');
  assert.deepEqual(house.body.children, [{ name: 'kitchen', path: 'house/kitchen', retained: false, topics: 2 }]);
  const del = await call(base, 'DELETE', `/api/v1/retained?topic=${encodeURIComponent('house/kitchen/hum')}`);
  assert.deepEqual(del.body, { topic: 'house/kitchen/hum', deleted: true });
  await eventually(async () => (await call(base, 'GET', '/api/v1/retained?filter=house/kitchen/%2B')).body.total === 1, 'deleted');
  assert.equal((await call(base, 'DELETE', '/api/v1/retained?topic=house/kitchen/hum')).status, 404);
  assert.equal((await call(base, 'DELETE', '/api/v1/retained?topic=house/%23')).status, 400);
  assert.equal((await call(base, 'GET', '/api/v1/retained?filter=a/%23/b')).status, 400);
});

test('POST /api/v1/publish delivers to subscribers, with MQTT 5 properties and a base64 payload', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  const sub = await connectMqtt(t, mqttUrl, { protocolVersion: 5 });
  const got = new Promise<{ topic: string; payload: Buffer; props: Record<string, unknown> | undefined }>((resolve) =>
    sub.once('message', (topic, payload, packet) => resolve({ topic, payload, props: packet.properties as Record<string, unknown> | undefined })),
  );
  await sub.subscribeAsync('api/#', { qos: 1 });
  const r = await call(base, 'POST', '/api/v1/publish', {
    topic: 'api/cmd',
    payload: Buffer.from([1, 2, 3]).toString('base64'),
    encoding: 'base64',
    qos: 1,
    properties: { contentType: 'application/octet-stream', userProperties: { source: 'admin' } },
  });
  assert.deepEqual(r.body, { topic: 'api/cmd', qos: 1, retain: false, bytes: 3 });
  const m = await within(got, 3000, 'published message');
  assert.equal(m.topic, 'api/cmd');
  assert.deepEqual([...m.payload], [1, 2, 3]);
  assert.equal(m.props?.['contentType'], 'application/octet-stream');
  assert.deepEqual({ ...(m.props?.['userProperties'] as object) }, { source: 'admin' });
  for (const body of [{ topic: 'a/#', payload: 'x' }, { payload: 'x' }, { topic: 'a', qos: 3 }, { topic: 'a', retain: 'yes' }, { topic: 'a', payload: '%%', encoding: 'base64' }]) {
    const bad = await call(base, 'POST', '/api/v1/publish', body);
    assert.deepEqual([bad.status, bad.body.error.code], [400, 'bad_request'], JSON.stringify(body));
  }
});

class MemoryBans implements BanList {
  readonly bans: Ban[] = [];
  list(): Ban[] {
    return this.bans;
  }
  add(ban: Ban): void {
    this.bans.push({ ...ban, createdAt: new Date().toISOString() });
  }
  remove(kind: Ban['kind'], value: string): boolean {
    const i = this.bans.findIndex((b) => b.kind === kind && b.value === value);
    if (i >= 0) this.bans.splice(i, 1);
    return i >= 0;
  }
}

test('bans: the broker address bans by default; a given ban list: add (kicking the client), list and remove', T, async (t) => {
  const plain = await startOps(t);
  assert.deepEqual((await call(plain.base, 'GET', '/api/v1/bans')).body, { available: true, items: [] });
  assert.equal((await call(plain.base, 'POST', '/api/v1/bans', { kind: 'address', value: '10.9.9.9', reason: 'test' })).status, 201);
  const listed = (await call(plain.base, 'GET', '/api/v1/bans')).body.items.map((b: Ban) => [b.kind, b.value, b.reason]);
  assert.deepEqual(listed, [['address', '10.9.9.9', 'test']]);
  assert.equal(plain.broker.core.security.bans.isBanned('10.9.9.9'), true, 'the broker refuses that address');
  assert.equal((await call(plain.base, 'DELETE', '/api/v1/bans/address/10.9.9.9')).status, 200);
  assert.equal(plain.broker.core.security.bans.isBanned('10.9.9.9'), false);

  const bans = new MemoryBans();
  const { base, mqttUrl, broker } = await startOps(t, {}, { bans });
  const c = await connectMqtt(t, mqttUrl, { clientId: 'bad-actor' });
  const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
  const r = await call(base, 'POST', '/api/v1/bans', { kind: 'clientId', value: 'bad-actor', reason: 'spam' });
  assert.equal(r.status, 201);
  assert.equal(r.body.disconnected, 1);
  await within(closed, 3000, 'banned client closed');
  await eventually(() => broker.connectionCount === 0, 'the banned connection to close');
  const list = await call(base, 'GET', '/api/v1/bans');
  assert.deepEqual(list.body.items.map((b: Ban) => [b.kind, b.value, b.reason]), [['clientId', 'bad-actor', 'spam']]);
  assert.equal((await call(base, 'POST', '/api/v1/bans', { kind: 'ip', value: 'x' })).status, 400);
  assert.equal((await call(base, 'DELETE', '/api/v1/bans/clientId/bad-actor')).status, 200);
  assert.equal((await call(base, 'DELETE', '/api/v1/bans/clientId/bad-actor')).status, 404);
  assert.deepEqual(bans.bans, []);
});

test('POST /api/v1/reload reloads the broker by default, or calls a given callback and reports its failure', T, async (t) => {
  const plain = await startOps(t);
  // No config source: only the files are re-read, nothing in the configuration changes.
  assert.deepEqual((await call(plain.base, 'POST', '/api/v1/reload', {})).body, { reloaded: true, applied: [], restartRequired: [], failures: [] });
  let calls = 0;
  let fail: 'throw' | 'refuse' | false = false;
  const { base } = await startOps(t, {}, {
    reload: async () => {
      calls++;
      if (fail === 'throw') throw new Error('callback broke');
      if (fail === 'refuse') return { reloaded: false, failures: [{ key: 'config', message: 'config.toml:3: bad value' }] };
      return { applied: ['log.level'] };
    },
  });
  assert.deepEqual((await call(base, 'POST', '/api/v1/reload', {})).body, { reloaded: true, applied: ['log.level'] });
  fail = 'refuse';
  const refused = await call(base, 'POST', '/api/v1/reload', {});
  assert.equal(refused.status, 422);
  assert.deepEqual(refused.body.error, { code: 'reload_refused', message: 'config.toml:3: bad value' });
  assert.equal(refused.body.reloaded, false);
  fail = 'throw';
  const r = await call(base, 'POST', '/api/v1/reload', {});
  assert.deepEqual([r.status, r.body.error], [500, { code: 'reload_failed', message: 'callback broke' }]);
  assert.equal(calls, 3);
});

test('GET /api/v1/bridges and /api/v1/overview', T, async (t) => {
  const { base, mqttUrl } = await startOps(t, {}, { bridges: () => [{ name: 'cloud', state: 'connected', remote: 'mqtts://example:8883' }] });
  await connectMqtt(t, mqttUrl);
  assert.deepEqual((await call(base, 'GET', '/api/v1/bridges')).body, { available: true, items: [{ name: 'cloud', state: 'connected', remote: 'mqtts://example:8883' }] });
  const o = (await call(base, 'GET', '/api/v1/overview')).body;
  assert.equal(o.connections, 1);
  assert.equal(o.connectionsTotal, 1);
  assert.match(o.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(o.sessions, { total: 1, online: 1, offline: 0 });
});

/** Reads Server-Sent Events from a fetch response. */
async function* sse(res: Response): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) yield { event, data: data.join('\n') };
    }
  }
}

async function nextEvent(it: AsyncGenerator<{ event: string; data: string }>, event: string): Promise<unknown> {
  for (;;) {
    const r = await within(it.next(), 3000, `SSE ${event}`);
    if (r.done === true) throw new Error('stream ended');
    if (r.value.event === event) return JSON.parse(r.value.data);
  }
}

test('GET /api/v1/stream streams matching messages as SSE and only those', T, async (t: TestContext) => {
  const { base, mqttUrl } = await startOps(t, { http: { maxStreams: 1 } });
  const abort = new AbortController();
  t.after(() => abort.abort());
  const res = await fetch(`${base}/api/v1/stream?filter=${encodeURIComponent('live/+')}`, { signal: abort.signal });
  assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  const events = sse(res);
  assert.deepEqual(await nextEvent(events, 'ready'), { filters: ['live/+'] });
  const over = await call(base, 'GET', '/api/v1/stream');
  assert.deepEqual([over.status, over.body.error.code], [503, 'too_many_streams']);
  assert.equal((await call(base, 'GET', '/api/v1/stream?filter=a/%23/b')).status, 400);
  const pub = await connectMqtt(t, mqttUrl, { clientId: 'streamer' });
  await pub.publishAsync('other/x', 'no', { qos: 1 });
  await pub.publishAsync('live/a', 'yes', { qos: 1 });
  const m = (await nextEvent(events, 'message')) as Record<string, unknown>;
  assert.deepEqual([m['topic'], m['payload'], m['client_id'], m['qos']], ['live/a', 'yes', 'streamer', 1]);
});

test('an API publish with retain reaches current subscribers with the retain flag clear [MQTT-3.3.1-9]', T, async (t) => {
  const { base, mqttUrl } = await startOps(t);
  const sub = await connectMqtt(t, mqttUrl, { clientId: clientId('ctl') });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('ctl/#');
  await call(base, 'POST', '/api/v1/publish', { topic: 'ctl/1', payload: 'p', retain: true });
  assert.deepEqual((await got.waitFor(1))[0], { topic: 'ctl/1', payload: 'p', qos: 0, retain: false, dup: false });
});
