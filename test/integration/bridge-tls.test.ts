/**
 * The remote over TLS (Mosquitto with a test PKI): CA file, a PKCS#12 client
 * certificate (the remote requires one), and the host-name check.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createBridge } from '../../src/bridge/bridge.js';
import { freePort, startMosquitto, startTern } from '../bridge/helpers/brokers.js';
import { once } from '../bridge/helpers/setup.js';
import { checkDelivery, Collector, Publisher, sleep } from '../bridge/helpers/traffic.js';
import { makePki } from '../transport/certs.js';

describe('bridge: TLS to the remote', { timeout: 30_000 }, () => {
  it('connects with a CA file and a PKCS#12 client certificate, and refuses a wrong host name', async (t) => {
    const pki = makePki(t);
    // mosquitto drops to its own user: let it read the PKI.
    chmodSync(pki.dir, 0o755);
    for (const f of readdirSync(pki.dir)) chmodSync(join(pki.dir, f), 0o644);
    const p12 = join(pki.dir, 'client.p12');
    execFileSync('openssl', ['pkcs12', '-export', '-in', pki.clientCert, '-inkey', pki.clientKey, '-out', p12, '-passout', 'pass:secret'], { stdio: 'ignore' });
    chmodSync(p12, 0o644);
    const plain = await freePort();
    const remote = await startMosquitto({
      extra: [`cafile ${pki.caCert}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, 'require_certificate true', `listener ${plain} 127.0.0.1`],
    });
    t.after(() => remote.close());
    const local = await startTern();
    t.after(() => local.close());
    const collector = new Collector({ host: '127.0.0.1', port: plain }, 'devices/#');
    await collector.connect();
    t.after(() => collector.close());
    const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-tls-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));

    const good = createBridge({
      name: 'tls',
      local: { host: local.host, port: local.port },
      remote: { host: 'localhost', port: remote.port, tls: { enabled: true, caFile: pki.caCert, pfxFile: p12, passphrase: 'secret' } },
      cache: { dir, durability: 'normal' },
      forward: [{ local: 'sensors/#', remotePrefix: 'devices/edge1/' }],
    });
    t.after(() => good.close());
    await good.start();
    await once(good, 'remoteUp');
    assert.match(good.stats().remote.description, /^mqtts:/);
    const pub = new Publisher(local);
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(100);
    assert.ok(await collector.until(() => collector.received.length >= 100, 5000));
    checkDelivery(pub.acked, collector.received, { maxDuplicates: 0 });

    // The certificate is for localhost/127.0.0.1: another name fails the check, and the bridge keeps its backlog.
    const wrong = createBridge({
      name: 'tls-wrong',
      local: { host: local.host, port: local.port },
      remote: {
        host: '127.0.0.1',
        port: remote.port,
        reconnect: { minDelayMs: 100, maxDelayMs: 200 },
        tls: { enabled: true, caFile: pki.caCert, pfxFile: p12, passphrase: 'secret', serverName: 'wrong.example' },
      },
      cache: { dir, durability: 'normal' },
      forward: [{ local: 'other/#', remotePrefix: 'x/' }],
    });
    t.after(() => wrong.close());
    const down = once<[Error | undefined]>(wrong, 'remoteDown');
    await wrong.start();
    const [err] = await down;
    assert.match(String(err?.message), /altnames|hostname|certificate/i);
    await sleep(500);
    assert.equal(wrong.stats().remote.state, 'down');
  });
});
