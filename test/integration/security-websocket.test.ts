/**
 * MQTT over WebSocket through the real broker: MQTT.js over ws and wss, and
 * a real browser (headless Chromium) running MQTT.js's browser bundle.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { connectMqtt, MessageCollector } from '../helpers/mqtt-client.js';
import { makePki, type TestPki } from '../transport/certs.js';
import { startSecureBroker } from './security-broker.js';

const CHROMIUM = '/usr/bin/chromium';
const MQTT_BUNDLE = new URL('../../node_modules/mqtt/dist/mqtt.min.js', import.meta.url);

let pki: TestPki;
const cleanups: Array<() => void> = [];
before(() => {
  pki = makePki({ after: (fn) => cleanups.push(fn) });
});
after(() => cleanups.forEach((fn) => fn()));

test('MQTT.js exchanges messages over ws:// and wss:// (subprotocol mqtt, MQTT 3.1.1 and 5)', async (t) => {
  const { ports } = await startSecureBroker(t, [
    { type: 'ws', host: '127.0.0.1', port: 0 },
    { type: 'wss', host: '127.0.0.1', port: 0, certFile: pki.serverCert, keyFile: pki.serverKey },
  ]);
  const ws = `ws://127.0.0.1:${ports[0]}/mqtt`;
  const wss = `wss://127.0.0.1:${ports[1]}/mqtt`;
  const sub = await connectMqtt(t, ws, { protocolVersion: 5 });
  const got = new MessageCollector(sub);
  await sub.subscribeAsync('web/#', { qos: 1 });
  const viaWss = await connectMqtt(t, wss, { ca: readFileSync(pki.caCert), rejectUnauthorized: true });
  await viaWss.publishAsync('web/secure', 'over wss', { qos: 1 });
  const viaWs = await connectMqtt(t, ws);
  await viaWs.publishAsync('web/plain', 'over ws', { qos: 0 });
  const messages = await got.waitFor(2);
  assert.deepEqual(messages.map((m) => `${m.topic}=${m.payload}`).sort(), ['web/plain=over ws', 'web/secure=over wss']);
});

/** The page: connect, announce itself, echo whatever arrives on browser/in to browser/out. */
const PAGE = (brokerUrl: string) => `<!doctype html><meta charset="utf-8"><title>tern browser test</title>
<script src="/mqtt.min.js"></script>
<script>
  const client = mqtt.connect(${JSON.stringify(brokerUrl)}, { clientId: 'browser-1', reconnectPeriod: 0 });
  client.on('error', (err) => { document.title = 'error: ' + err.message; });
  client.on('connect', () => {
    client.subscribe('browser/in', { qos: 1 }, () => client.publish('browser/out', 'hello from the browser', { qos: 1 }));
  });
  client.on('message', (topic, payload) => client.publish('browser/out', 'echo:' + payload.toString(), { qos: 1 }));
</script>`;

test('a browser page with MQTT.js talks to the broker over ws', async (t) => {
  if (!existsSync(CHROMIUM)) {
    const how = 'install it with: sudo apt-get install -y chromium';
    if (process.env['CI'] === 'true') assert.fail(`${CHROMIUM} is missing under CI; ${how}`);
    t.skip(`${CHROMIUM} is missing; ${how}`);
    return;
  }
  const { ports } = await startSecureBroker(t, [{ type: 'ws', host: '127.0.0.1', port: 0 }]);
  const brokerUrl = `ws://127.0.0.1:${ports[0]}/mqtt`;
  const bundle = readFileSync(MQTT_BUNDLE);
  const site = http.createServer((req, res) => {
    if (req.url === '/mqtt.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle);
    else if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE(brokerUrl));
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    site.closeAllConnections();
    site.close();
  });

  const node = await connectMqtt(t, brokerUrl);
  const got = new MessageCollector(node);
  await node.subscribeAsync('browser/out', { qos: 1 });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    timeout: 20_000,
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`, { timeout: 10_000 });

  const [hello] = await got.waitFor(1, 10_000).catch(async (err: Error) => {
    throw new Error(`${err.message}; page title: ${await page.title()}`);
  });
  assert.equal(hello?.payload, 'hello from the browser');
  await node.publishAsync('browser/in', 'ping', { qos: 1 });
  const messages = await got.waitFor(2, 5000);
  assert.equal(messages[1]?.payload, 'echo:ping');
});
