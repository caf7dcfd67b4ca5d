import assert from 'node:assert/strict';
import { once } from 'node:events';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { isTernError } from '../../src/errors.js';
import { makePki, type TestPki } from './certs.js';
import { firstChunk, startListener, within } from './harness.js';

let pki: TestPki;
const fns: Array<() => void> = [];

interface ClientOpts {
  cert?: string;
  key?: string;
  ca?: string;
}

/** Open a TLS client; resolves once the client considers the handshake done. */
async function connect(port: number, opts: ClientOpts = {}): Promise<tls.TLSSocket> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: readFileSync(opts.ca ?? pki.caCert),
    ...(opts.cert === undefined ? {} : { cert: readFileSync(opts.cert), key: readFileSync(opts.key!) }),
  });
  socket.on('error', () => {});
  await within(once(socket, 'secureConnect'), 3000, 'TLS handshake');
  return socket;
}

/** The client is dropped without its connection reaching the broker. */
async function assertRefused(run: Awaited<ReturnType<typeof startListener>>, port: number, opts: ClientOpts): Promise<void> {
  const socket = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(pki.caCert), ...(opts.cert ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key!) } : {}) });
  socket.on('error', () => {});
  socket.on('secureConnect', () => socket.write('hello'));
  // (events.once would reject on the TLS alert's 'error'; only 'close' matters here.)
  await within(new Promise((resolve) => socket.once('close', resolve)), 3000, 'refused client closed');
  assert.equal(run.accepted.length, 0, 'the connection never reached the broker');
}

describe('tls listener', () => {
  before(() => {
    pki = makePki({ after: (fn) => fns.push(fn) });
  });
  after(() => {
    for (const fn of fns) fn();
  });

  test('serves the configured certificate and hands the broker a TLS byte stream', async (t) => {
    const run = await startListener(t, { type: 'tls', certFile: pki.serverCert, keyFile: pki.serverKey });
    const client = await connect(run.port);
    t.after(() => client.destroy());
    assert.equal(client.authorized, true, 'the client verified the server certificate against the CA');
    const { stream, info } = await run.next();
    assert.equal(info.transport, 'tls');
    assert.equal(info.loopback, true);
    assert.equal(info.certificate, undefined, 'no client certificate was asked for');
    client.write('ping');
    assert.equal(String(await firstChunk(stream)), 'ping');
  });

  test('use_identity_as_username exposes the client certificate CN; identity_field picks another field', async (t) => {
    const base = { type: 'tls', certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert, requireCertificate: true, useIdentityAsUsername: true };
    const run = await startListener(t, base);
    const client = await connect(run.port, { cert: pki.clientCert, key: pki.clientKey });
    t.after(() => client.destroy());
    const { info } = await run.next();
    assert.equal(info.identity, 'alice');
    assert.equal(info.certificate?.subject['O'], 'Tern Tests');
    assert.match(info.certificate?.fingerprint256 ?? '', /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

    const byOrg = await startListener(t, { ...base, identityField: 'O' });
    const c2 = await connect(byOrg.port, { cert: pki.clientCert, key: pki.clientKey });
    t.after(() => c2.destroy());
    assert.equal((await byOrg.next()).info.identity, 'Tern Tests');
  });

  test('require_certificate refuses a client that sends no certificate', async (t) => {
    const run = await startListener(t, { type: 'tls', certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert, requireCertificate: true });
    await assertRefused(run, run.port, {});
  });

  test('with ca_file, a client certificate from another CA or an expired one is refused; none at all is accepted', async (t) => {
    const run = await startListener(t, { type: 'tls', certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caCert });
    await assertRefused(run, run.port, { cert: pki.rogueCert, key: pki.rogueKey });
    await assertRefused(run, run.port, { cert: pki.expiredCert, key: pki.expiredKey });
    const anonymous = await connect(run.port);
    t.after(() => anonymous.destroy());
    const { info } = await run.next();
    assert.equal(info.certificate, undefined);
  });

  test('reload() serves a new certificate to new connections without dropping open ones', async (t) => {
    const certFile = join(pki.dir, 'live.crt');
    const keyFile = join(pki.dir, 'live.key');
    copyFileSync(pki.serverCert, certFile);
    copyFileSync(pki.serverKey, keyFile);
    const run = await startListener(t, { type: 'tls', certFile, keyFile });
    const before = await connect(run.port);
    t.after(() => before.destroy());
    const open = await run.next();
    const oldPrint = before.getPeerCertificate().fingerprint256;

    // A broken key keeps the old certificate.
    writeFileSync(keyFile, 'not a key');
    await assert.rejects(run.listener.reload(), (err) => isTernError(err, 'ERR_TLS_FILE'));
    const still = await connect(run.port);
    t.after(() => still.destroy());
    assert.equal(still.getPeerCertificate().fingerprint256, oldPrint);
    await run.next();

    copyFileSync(pki.server2Cert, certFile);
    copyFileSync(pki.server2Key, keyFile);
    await run.listener.reload();
    const after = await connect(run.port);
    t.after(() => after.destroy());
    assert.notEqual(after.getPeerCertificate().fingerprint256, oldPrint, 'new connections get the new certificate');
    before.write('still here');
    assert.equal(String(await firstChunk(open.stream)), 'still here', 'the connection opened before the reload still works');
  });

  test('tls_min_version = "TLSv1.3" refuses a TLS 1.2 client', async (t) => {
    const run = await startListener(t, { type: 'tls', certFile: pki.serverCert, keyFile: pki.serverKey, tlsMinVersion: 'TLSv1.3' });
    const old = tls.connect({ host: '127.0.0.1', port: run.port, ca: readFileSync(pki.caCert), maxVersion: 'TLSv1.2' });
    const failed = new Promise<Error>((resolve) => old.once('error', resolve));
    assert.match((await within(failed, 3000, 'TLS 1.2 handshake refused')).message, /version|alert/i);
    const current = await connect(run.port);
    t.after(() => current.destroy());
    assert.equal(current.getProtocol(), 'TLSv1.3');
  });

  test('start() fails with ERR_TLS_FILE when the key file is missing', async (t) => {
    await assert.rejects(
      startListener(t, { type: 'tls', certFile: pki.serverCert, keyFile: join(pki.dir, 'nope.key') }),
      (err) => isTernError(err, 'ERR_TLS_FILE') && /nope\.key: ENOENT/.test((err as Error).message),
    );
  });
});
