/**
 * A full disk under the SQLite store: the broker child process gets a low
 * RLIMIT_FSIZE (prlimit on the running process; Node ignores SIGXFSZ, so
 * writes past it fail with EFBIG, as on a full file system with ENOSPC), while
 * publishers send QoS 1/2 messages that an offline persistent session must
 * keep. Once the store cannot grow, QoS 1/2 publishes are refused: v5
 * publishers get a failure reason code (0x80 or above) in PUBACK / PUBREC,
 * 3.1.1 publishers (no negative ack) are disconnected. Nothing is
 * acknowledged that is not stored: after the limit is lifted and the broker
 * restarted, the subscriber's session holds every message acknowledged with
 * success. The broker itself keeps running and recovers once space is back.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { BrokerProcess } from '../helpers/broker-process.js';
import { accepted, LoadClient } from './helpers/load-client.js';
import { mib, setLimit } from './helpers/proc.js';

const PAYLOAD = 4096;
/** Bytes the store may still grow by once the limit is set. */
const ROOM = 1024 * 1024;
const WINDOW = 32;

function largestFile(dir: string): number {
  let max = 0;
  for (const name of readdirSync(dir)) max = Math.max(max, statSync(join(dir, name)).size);
  return max;
}

interface PublisherRun {
  ok: Set<string>;
  failed: Map<number, number>;
  disconnectedAfter: number;
}

/**
 * Publish numbered QoS `qos` messages, WINDOW at a time, until the broker
 * refuses one (v5) or closes the connection (3.1.1), or `max` are sent.
 */
async function publishUntilRefused(client: LoadClient, name: string, qos: 1 | 2, max: number): Promise<PublisherRun> {
  const ok = new Set<string>();
  const failed = new Map<number, number>();
  const payload = Buffer.alloc(PAYLOAD, 0x61);
  let sent = 0;
  let answered = 0;
  let refusals = 0;
  await new Promise<void>((resolve) => {
    client.onAck = ({ code, tag }) => {
      answered++;
      if (accepted(code)) ok.add(tag as string);
      else {
        failed.set(code, (failed.get(code) ?? 0) + 1);
        if (code !== -1) refusals++;
      }
      pump();
    };
    const pump = (): void => {
      // After the first refusals, a few more: the broker must refuse every one while the disk is full.
      const stop = client.isClosed || sent >= max || refusals >= 20;
      if (stop) {
        if (answered === sent) resolve();
        return;
      }
      while (client.inflight < WINDOW && sent < max && refusals < 20) {
        const tag = `${name}-${sent++}`;
        payload.write(tag.padEnd(24), 0);
        client.publish('disk/full', payload, qos, tag);
      }
    };
    pump();
  });
  return { ok, failed, disconnectedAfter: client.isClosed ? sent : -1 };
}

test('disk full: QoS 1/2 publishes are refused (v5 reason code, 3.1.1 disconnect), never acknowledged falsely; the broker recovers', { timeout: 60_000 }, async (t) => {
  const broker = await BrokerProcess.start(t, { backend: 'sqlite', durability: 'normal' });
  const port = broker.port;
  const pid = broker.pid!;

  // The persistent session every message is stored for.
  const keeper = await LoadClient.connect({ port, clientId: 'keeper', version: 5, clean: false, sessionExpiry: 3600 });
  await keeper.subscribe([{ filter: 'disk/#', qos: 2 }]);
  await keeper.end();

  const v5 = await LoadClient.connect({ port, clientId: 'pub-v5', version: 5 });
  const v5q2 = await LoadClient.connect({ port, clientId: 'pub-v5-qos2', version: 5 });
  const v4 = await LoadClient.connect({ port, clientId: 'pub-v311', version: 4 });
  t.after(() => [v5, v5q2, v4].forEach((c) => c.destroy()));

  const base = largestFile(broker.dataDir);
  setLimit(pid, 'fsize', base + ROOM);
  t.diagnostic(`largest store file ${mib(base)}; RLIMIT_FSIZE set to ${mib(base + ROOM)}`);

  const max = Math.ceil((8 * ROOM) / PAYLOAD);
  const [r5, r5q2, r4] = await Promise.all([
    publishUntilRefused(v5, 'v5', 1, max),
    publishUntilRefused(v5q2, 'q2', 2, max),
    publishUntilRefused(v4, 'v4', 1, max),
  ]);
  const codes = (m: Map<number, number>): string => [...m].map(([c, n]) => `0x${c.toString(16)}x${n}`).join(' ') || 'none';
  t.diagnostic(`v5 QoS 1: ${r5.ok.size} acknowledged, refused ${codes(r5.failed)}`);
  t.diagnostic(`v5 QoS 2: ${r5q2.ok.size} acknowledged, refused ${codes(r5q2.failed)}`);
  t.diagnostic(`3.1.1 QoS 1: ${r4.ok.size} acknowledged, disconnected after ${r4.disconnectedAfter} sent`);

  assert.ok(broker.running, `the broker exited:\n${broker.output().slice(-4000)}`);
  for (const [name, r] of [['v5 QoS 1', r5], ['v5 QoS 2', r5q2]] as const) {
    const refusedCodes = [...r.failed.keys()].filter((c) => c !== -1);
    assert.ok(refusedCodes.length > 0, `${name}: no publish was refused`);
    for (const c of refusedCodes) assert.ok(c >= 0x80, `${name}: reason code 0x${c.toString(16)} is not a failure`);
    assert.ok(!v5.isClosed, `${name}: a v5 publisher is answered, not disconnected`);
  }
  assert.ok(r4.disconnectedAfter > 0, 'the 3.1.1 publisher must be disconnected (it has no negative acknowledgement)');
  const errors = new Map<string, number>();
  for (const line of broker.output().split('\n')) {
    if (!line.includes('"level":50')) continue;
    const msg = (JSON.parse(line) as { msg: string }).msg;
    errors.set(msg, (errors.get(msg) ?? 0) + 1);
  }
  t.diagnostic(`error log lines: ${[...errors].map(([m, n]) => `${n} x "${m}"`).join(', ')}`);
  const errorLines = [...errors.values()].reduce((a, b) => a + b, 0);
  assert.ok(errorLines >= 1 && errorLines <= 3, `the failures are logged, but not once per refused publish (${errorLines} lines)`);

  // Space comes back: the same broker stores and acknowledges again.
  setLimit(pid, 'fsize', 2 ** 40);
  let recovered = -1;
  for (let i = 0; i < 50 && !accepted(recovered); i++) {
    recovered = await v5.publishAcked('disk/full', `after-${i}`, 1);
    if (!accepted(recovered)) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(accepted(recovered), `no success after the limit was lifted (last code ${recovered})`);

  // Every message acknowledged with success is in the store: a restart hands them to the subscriber.
  const acknowledged = new Set([...r5.ok, ...r5q2.ok, ...r4.ok]);
  assert.equal(await broker.stop(), 0);
  await broker.start();
  const seen = new Set<string>();
  const back = await LoadClient.connect({
    port,
    clientId: 'keeper',
    version: 5,
    clean: false,
    sessionExpiry: 3600,
    onMessage: (p) => seen.add(p.payload.subarray(0, 24).toString().trim()),
  });
  t.after(() => back.destroy());
  const deadline = Date.now() + 20_000;
  const missing = (): string[] => [...acknowledged].filter((tag) => !seen.has(tag));
  while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.diagnostic(`after restart: ${seen.size} stored messages delivered, ${acknowledged.size} acknowledged before; missing ${missing().length}`);
  assert.deepEqual(missing().slice(0, 10), [], 'a message acknowledged with success was not stored');
  assert.ok(acknowledged.size > 0, 'some messages were stored before the disk filled');
});
