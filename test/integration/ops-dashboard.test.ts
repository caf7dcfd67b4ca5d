/**
 * The web dashboard in headless Chromium (Debian's `chromium`, driven by
 * playwright-core): it loads with a bearer token given once in the URL, shows
 * a client the test connects and kicks it, shows a retained message in the
 * topic tree, and shows live messages. A screenshot of every view goes to
 * test-artifacts/. Without Chromium the test is skipped, except under CI=true,
 * where that is a failure.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { connectMqtt, within } from '../helpers/mqtt-client.js';
import { eventually, startOps } from '../http/ops-helpers.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
const missing = !existsSync(CHROMIUM);
if (missing && process.env['CI'] === 'true') {
  throw new Error(`${CHROMIUM} is missing: install it with apt-get install -y chromium`);
}

async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: new URL(`dashboard-${name}.png`, ARTIFACTS).pathname, fullPage: true });
}

async function open(page: Page, view: string): Promise<void> {
  await page.evaluate(`document.body.dataset.loaded = ''; location.hash = ${JSON.stringify(view)};`);
  await page.waitForSelector(`body[data-loaded="${view}"]`, { timeout: 5000 });
}

test('the dashboard shows, kicks and browses what the broker has, and streams live messages', { timeout: 60_000, skip: missing ? `${CHROMIUM} not installed` : false }, async (t) => {
  const { base, mqttUrl, broker } = await startOps(t, { http: { token: 'dash-token' } }, {
    bridges: () => [{ name: 'cloud', state: 'connecting', remote: 'mqtts://broker.example:8883' }],
  });
  const browser = await launch();
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.on('request', (req) => {
    if (!req.url().startsWith(base)) problems.push(`request outside the broker: ${req.url()}`);
  });

  const device = await connectMqtt(t, mqttUrl, { clientId: 'dash-device-1', protocolVersion: 5 });
  await device.subscribeAsync('dash/#');
  await device.publishAsync('dash/room/temp', '22.5', { qos: 1, retain: true });

  // Overview: the token from the URL is used and then removed from it.
  await page.goto(`${base}/?access_token=dash-token#overview`);
  await page.waitForSelector('body[data-loaded="overview"]', { timeout: 5000 });
  assert.equal(new URL(page.url()).search, '', 'the token is taken out of the address bar');
  assert.equal((await page.textContent('[data-card="connections"] .value'))?.trim(), '1');
  await shot(page, 'overview');

  // Clients: the connected device is listed; Kick disconnects it.
  await open(page, 'clients');
  await page.waitForSelector('tr[data-client="dash-device-1"]', { timeout: 5000 });
  assert.match((await page.textContent('tr[data-client="dash-device-1"]')) ?? '', /5\.0/);
  await shot(page, 'clients');
  const kicked = new Promise<number | undefined>((resolve) => device.once('disconnect', (p) => resolve(p.reasonCode)));
  await page.click('button[data-kick="dash-device-1"]');
  assert.equal(await within(kicked, 5000, 'kick'), 0x98);
  await page.waitForSelector('tr[data-client="dash-device-1"]', { state: 'detached', timeout: 5000 });
  await eventually(() => broker.connectionCount === 0, 'the kicked connection to close');

  // Subscriptions (the kicked client's clean session is gone: none left).
  await open(page, 'subscriptions');
  await shot(page, 'subscriptions');

  // Topic tree: dash -> room -> temp shows the retained payload.
  await open(page, 'topics');
  await page.click('li[data-topic="dash"]');
  await page.click('li[data-topic="dash/room"]');
  await page.click('li[data-topic="dash/room/temp"]');
  await page.waitForSelector('pre[data-retained-payload="dash/room/temp"]', { timeout: 5000 });
  assert.equal(await page.textContent('pre[data-retained-payload="dash/room/temp"]'), '22.5');
  await shot(page, 'topics');

  // Live: watch dash/#, publish, see it.
  await open(page, 'live');
  await page.fill('#live-filter', 'dash/#');
  await page.click('#live-start');
  // A locator wait, not waitForFunction: the dashboard's CSP (rightly) forbids the eval that a string predicate needs.
  await page.locator('#live-state', { hasText: /^watching/ }).waitFor({ timeout: 5000 });
  const pub = await connectMqtt(t, mqttUrl, { clientId: 'dash-pub' });
  await pub.publishAsync('other/topic', 'not shown', { qos: 1 });
  await pub.publishAsync('dash/live', 'hello from the test', { qos: 1 });
  await page.waitForSelector('tr[data-live-topic="dash/live"]', { timeout: 5000 });
  const row = (await page.textContent('tr[data-live-topic="dash/live"]')) ?? '';
  assert.match(row, /hello from the test/);
  assert.match(row, /dash-pub/);
  assert.equal(await page.locator('tr[data-live-topic="other/topic"]').count(), 0);
  await shot(page, 'live');
  await page.click('#live-stop');

  await open(page, 'bans');
  // The broker's own address ban list backs the view: the form is there, no "unavailable" notice.
  assert.equal(await page.isVisible('#bans-unavailable'), false);
  assert.equal(await page.isVisible('#ban-form'), true);
  await shot(page, 'bans');

  await open(page, 'bridges');
  assert.match((await page.textContent('#bridge-rows')) ?? '', /cloud\s*connecting/);
  await shot(page, 'bridges');

  assert.deepEqual(problems, []);
});
