/**
 * Running out of file descriptors: the broker child process gets a low
 * RLIMIT_NOFILE (prlimit on the running process), then bursts of clients
 * connect until it can accept no more.
 *
 * First the kernel's own refusal: a limit only a few descriptors above what
 * the broker has open, and a burst at once (before the broker re-reads its
 * limit): libuv accepts and closes what it cannot keep, silently; the broker
 * must not crash and keeps serving. Then the broker's: with its reserve of
 * descriptors plus room for 20 clients, it refuses the rest itself, logs
 * that once when refusals start (not per connection), keeps serving the
 * clients it has, accepts again once some leave (and says so), and every
 * descriptor comes back.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FD_RESERVE } from '../../src/broker/fd-budget.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { LoadClient } from './helpers/load-client.js';
import { fdCount, setLimit } from './helpers/proc.js';

/** Descriptors above the broker's count at the limit: its reserve plus room for 20 clients. */
const HEADROOM = FD_RESERVE + 20;
const BURST = 80;

interface BurstResult {
  accepted: LoadClient[];
  refused: number;
}

/** `n` clients connecting at once; which got a CONNACK and how many were refused. */
async function burst(port: number, prefix: string, n: number): Promise<BurstResult> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => LoadClient.connect({ port, clientId: `${prefix}-${i}`, timeoutMs: 10_000 })),
  );
  const accepted: LoadClient[] = [];
  let refused = 0;
  for (const r of results) {
    if (r.status === 'fulfilled') accepted.push(r.value);
    else refused++;
  }
  return { accepted, refused };
}

function emfileLines(output: string): string[] {
  return output.split('\n').filter((l) => l.includes('EMFILE'));
}

test('out of file descriptors: new connections are refused (logged once when it starts), existing clients keep working, no crash, no leak', { timeout: 60_000 }, async (t) => {
  const broker = await BrokerProcess.start(t, { backend: 'memory' });
  const pid = broker.pid!;
  const port = broker.port;

  const existing = await LoadClient.connect({ port, clientId: 'existing', version: 5 });
  t.after(() => existing.destroy());
  await existing.subscribe([{ filter: 'fd/probe', qos: 1 }]);

  const before = fdCount(pid);

  // The kernel refuses (EMFILE): libuv closes the connections it cannot accept; the broker lives on.
  setLimit(pid, 'nofile', before + 6);
  const tight = await burst(port, 'k', 40);
  t.diagnostic(`limit ${before + 6} (${before} open): ${tight.accepted.length} of 40 accepted, ${tight.refused} closed`);
  assert.ok(tight.refused > 0 && tight.accepted.length <= 8, `accepted ${tight.accepted.length}`);
  assert.ok(broker.running, `the broker exited:\n${broker.output()}`);
  await Promise.all(tight.accepted.map((c) => c.ping()));
  await Promise.all(tight.accepted.map((c) => c.end()));
  await existing.ping();

  setLimit(pid, 'nofile', before + HEADROOM);
  // The broker re-reads its limit at most once a second.
  await new Promise((r) => setTimeout(r, 1200));

  // Burst 1: more clients than descriptors left.
  const first = await burst(port, 'b1', BURST);
  t.diagnostic(`fds before ${before}, limit ${before + HEADROOM}; burst 1 of ${BURST}: ${first.accepted.length} accepted, ${first.refused} refused`);
  assert.ok(first.refused > 0, 'some connections must be refused at the limit');
  assert.ok(first.accepted.length > 0 && first.accepted.length <= HEADROOM - FD_RESERVE + 2, `accepted ${first.accepted.length}`);
  assert.ok(broker.running, `the broker exited:\n${broker.output()}`);

  // The clients it has keep working: a QoS 1 round trip, and every accepted client answers a ping.
  const got = new Promise<string>((resolve) => {
    existing.onMessage = (p) => resolve(p.payload.toString());
  });
  assert.equal(await existing.publishAcked('fd/probe', 'still here', 1), 0);
  assert.equal(await got, 'still here');
  await Promise.all(first.accepted.map((c) => c.ping()));

  // Burst 2 while still full: refused again, logged again (a new burst).
  await new Promise((r) => setTimeout(r, 1200));
  const second = await burst(port, 'b2', 20);
  assert.equal(second.accepted.length, 0, 'nothing can be accepted while the descriptors are all in use');
  const lines = emfileLines(broker.output());
  t.diagnostic(`burst 2 of 20: ${second.refused} refused; EMFILE log lines: ${lines.length}`);
  assert.ok(lines.length >= 1, `no EMFILE log line:\n${broker.output().slice(-4000)}`);
  assert.ok(lines.length <= 4, `EMFILE logged ${lines.length} times for 2 bursts (once per burst expected):\n${lines.join('\n')}`);
  for (const line of lines) assert.match(line, /"level":40/, 'logged as a warning');

  // Some clients leave: new ones are accepted again, and the broker says so.
  await Promise.all(first.accepted.slice(0, 10).map((c) => c.end()));
  await new Promise((r) => setTimeout(r, 300));
  const third = await burst(port, 'b3', 5);
  t.diagnostic(`after 10 left: ${third.accepted.length} of 5 accepted`);
  assert.equal(third.accepted.length, 5, 'descriptors freed by departing clients are usable again');
  assert.match(broker.output(), /accepting connections again/);

  for (const c of [...first.accepted.slice(10), ...third.accepted]) c.destroy();
  await existing.end();
  // Every descriptor comes back.
  const deadline = Date.now() + 5000;
  while (fdCount(pid) > before - 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const after = fdCount(pid);
  t.diagnostic(`fds after everyone left: ${after} (before the bursts ${before}, with 'existing' connected)`);
  assert.ok(after <= before, `fds after ${after} > before ${before}`);
  assert.equal(await broker.stop(), 0);
});
