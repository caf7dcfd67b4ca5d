import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MqttClient } from '../../src/client/client.js';
import { isTernError } from '../../src/errors.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { collect } from './util.js';

let broker: Mosquitto;
let pki: string;

/** A throwaway CA and a server certificate for 127.0.0.1 / localhost (EC keys: fast). */
function makePki(dir: string): void {
  const ssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=tern-test-ca', '-days', '1');
  ssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext');
  ssl('req', '-x509', ...ec, '-keyout', 'other.key', '-out', 'other.crt', '-subj', '/CN=other-ca', '-days', '1');
  // mosquitto drops to its own user: it must be able to read these.
  chmodSync(dir, 0o755);
  for (const f of ['server.key', 'server.crt', 'ca.crt']) chmodSync(join(dir, f), 0o644);
}

before(async () => {
  pki = mkdtempSync(join(tmpdir(), 'tern-pki-'));
  makePki(pki);
  broker = await startMosquitto([`certfile ${join(pki, 'server.crt')}`, `keyfile ${join(pki, 'server.key')}`]);
});
after(async () => {
  await broker.close();
  rmSync(pki, { recursive: true, force: true });
});

test('connects over TLS with a trusted CA and round-trips a QoS 1 message', { timeout: 5000 }, async (t) => {
  const ca = readFileSync(join(pki, 'ca.crt'));
  const opts = { host: broker.host, port: broker.port, protocolLevel: 5 as const, tls: { ca } };
  const sub = new MqttClient(opts);
  const pub = new MqttClient(opts);
  t.after(() => {
    sub.destroy();
    pub.destroy();
  });
  await sub.connect();
  await pub.connect();
  await sub.subscribe('tls/1', { qos: 1 });
  const got = collect(sub, 1);
  await pub.publish('tls/1', 'secret', { qos: 1 });
  assert.equal((await got)[0]?.payload.toString(), 'secret');
  await Promise.all([sub.end(), pub.end()]);
});

test('a server certificate from an untrusted CA is refused', { timeout: 5000 }, async (t) => {
  const client = new MqttClient({ host: broker.host, port: broker.port, tls: { ca: readFileSync(join(pki, 'other.crt')) } });
  t.after(() => client.destroy());
  await assert.rejects(client.connect(), (err) => isTernError(err, 'ERR_CLIENT_CONNECTION_LOST') && /certificate/i.test(err.message));
});

test('rejectUnauthorized: false accepts any certificate', { timeout: 5000 }, async (t) => {
  const client = new MqttClient({ host: broker.host, port: broker.port, tls: { rejectUnauthorized: false } });
  t.after(() => client.destroy());
  assert.equal((await client.connect()).reasonCode, 0);
  await client.end();
});

test('tern bench runs over TLS with --ca', { timeout: 10000 }, async () => {
  const { PassThrough } = await import('node:stream');
  const { runBench } = await import('../../src/cli/bench.js');
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  const argv = ['pairs', '-p', String(broker.port), '--ca', join(pki, 'ca.crt'), '-c', '1', '-q', '1', '-d', '0.3', '--json', '--quiet'];
  const code = await runBench(argv, { stdout, stderr: new PassThrough() });
  const r = JSON.parse(out) as { clients: { connected: number }; received: number; errors: number };
  assert.equal(code, 0, out);
  assert.equal(r.clients.connected, 2);
  assert.ok(r.received > 0);
});
