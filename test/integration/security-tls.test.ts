/**
 * MQTT over TLS end to end through the real broker: MQTT.js (mqtts) and the
 * mosquitto command-line clients, with certificates made by openssl.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connectAsync } from 'mqtt';
import type { IClientOptions } from 'mqtt';
import { connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { mosquittoPub, mosquittoSub } from '../helpers/mosquitto-clients.js';
import { makePki, type TestPki } from '../transport/certs.js';
import { startSecureBroker } from './security-broker.js';

let pki: TestPki;
const cleanups: Array<() => void> = [];
before(() => {
  pki = makePki({ after: (fn) => cleanups.push(fn) });
});
after(() => cleanups.forEach((fn) => fn()));

const tlsListener = (over: Record<string, unknown> = {}) => ({ type: 'tls' as const, host: '127.0.0.1', port: 0, certFile: pki.serverCert, keyFile: pki.serverKey, ...over });
const mutualListener = (over: Record<string, unknown> = {}) => tlsListener({ caFile: pki.caCert, requireCertificate: true, ...over });
const tlsOpts = (o: { ca?: string; cert?: string; key?: string } = {}): IClientOptions => ({
  ca: readFileSync(o.ca ?? pki.caCert),
  ...(o.cert === undefined ? {} : { cert: readFileSync(o.cert), key: readFileSync(o.key!) }),
  rejectUnauthorized: true,
});

/** The connection attempt fails (TLS error or closed before CONNACK). */
async function assertConnectFails(url: string, opts: IClientOptions): Promise<void> {
  await assert.rejects(connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 3000, ...opts }, false));
}

describe('tls listener through the broker', () => {
  test('MQTT.js publishes and subscribes over mqtts with a CA-verified server certificate', async (t) => {
    const { ports } = await startSecureBroker(t, [tlsListener()]);
    const url = `mqtts://127.0.0.1:${ports[0]}`;
    const sub = await connectMqtt(t, url, tlsOpts());
    const got = new MessageCollector(sub);
    await sub.subscribeAsync('secure/t', { qos: 1 });
    const pub = await connectMqtt(t, url, tlsOpts());
    await pub.publishAsync('secure/t', 'over tls', { qos: 1 });
    assert.deepEqual((await got.waitFor(1)).map((m) => m.payload), ['over tls']);
  });

  test('clients refuse a server certificate for the wrong host name or from an unknown CA', async (t) => {
    const { ports } = await startSecureBroker(t, [tlsListener({ certFile: pki.wrongHostCert, keyFile: pki.wrongHostKey }), tlsListener()]);
    await assertConnectFails(`mqtts://127.0.0.1:${ports[0]}`, tlsOpts());
    await assertConnectFails(`mqtts://127.0.0.1:${ports[1]}`, tlsOpts({ ca: pki.rogueCaCert }));
  });

  test('require_certificate: a client certificate gets in; none, an expired one or one from another CA does not', async (t) => {
    const { ports, nextClientAddress } = await startSecureBroker(t, [mutualListener({ useIdentityAsUsername: true })]);
    const url = `mqtts://127.0.0.1:${ports[0]}`;
    const seen = nextClientAddress();
    await connectMqtt(t, url, tlsOpts({ cert: pki.clientCert, key: pki.clientKey }));
    assert.equal((await seen).address, '127.0.0.1');
    await assertConnectFails(url, tlsOpts());
    await assertConnectFails(url, tlsOpts({ cert: pki.expiredCert, key: pki.expiredKey }));
    await assertConnectFails(url, tlsOpts({ cert: pki.rogueCert, key: pki.rogueKey }));
  });

  test('mosquitto_pub/sub with --cafile/--cert/--key exchange messages; without a certificate mosquitto_pub fails', async (t) => {
    const { ports } = await startSecureBroker(t, [mutualListener()]);
    const port = ports[0]!;
    const creds = ['--cafile', pki.caCert, '--cert', pki.clientCert, '--key', pki.clientKey];
    const sub = mosquittoSub(t, port, [...creds, '-t', 'interop/tls', '-C', '1', '-W', '8']);
    await sub.subscribed;
    const pub = await mosquittoPub(t, port, [...creds, '-t', 'interop/tls', '-m', 'from mosquitto_pub', '-q', '1']);
    assert.equal(pub.code, 0, pub.stderr);
    const result = await sub.result;
    assert.deepEqual(result.messages.map((m) => m.payload), ['from mosquitto_pub']);

    const refused = await mosquittoPub(t, port, ['--cafile', pki.caCert, '-t', 'interop/tls', '-m', 'x']);
    assert.notEqual(refused.code, 0, 'no client certificate: refused');
    const expired = await mosquittoPub(t, port, ['--cafile', pki.caCert, '--cert', pki.expiredCert, '--key', pki.expiredKey, '-t', 'interop/tls', '-m', 'x']);
    assert.notEqual(expired.code, 0, 'expired client certificate: refused');
  });
});
