/**
 * SIGTERM under load: QoS 1 publishers (3.1.1 and v5) keep a window of
 * publishes in flight to an offline persistent session, on a SQLite store
 * with `durability = "full"` (an fsync per commit group, so at any moment
 * some acknowledgements wait for a commit). On SIGTERM the broker stops
 * reading, lets those commits finish and sends their acknowledgements, tells
 * v5 clients 0x8B, and exits 0 within `limits.shutdown_grace_ms`.
 *
 * Checked after a restart: every acknowledged message is in the session
 * (nothing acknowledged falsely), and every stored message was acknowledged
 * (nothing read was left without its ack: the drain finished the ack chain).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerProcess } from '../helpers/broker-process.js';
import { accepted, LoadClient } from './helpers/load-client.js';

const GRACE_MS = 5000;
const WINDOW = 100;
const PUBLISHERS: ReadonlyArray<{ id: string; version: 4 | 5 }> = [
  { id: 'p311-a', version: 4 },
  { id: 'p311-b', version: 4 },
  { id: 'p5-a', version: 5 },
  { id: 'p5-b', version: 5 },
];

interface Flow {
  client: LoadClient;
  sent: number;
  acked: Set<string>;
  ackedAfterSignal: number;
  refused: number;
}

function startFlow(client: LoadClient, payloadBytes: number, signalled: () => boolean): Flow {
  const flow: Flow = { client, sent: 0, acked: new Set(), ackedAfterSignal: 0, refused: 0 };
  const payload = Buffer.alloc(payloadBytes, 0x62);
  const pump = (): void => {
    while (!client.isClosed && client.inflight < WINDOW) {
      const tag = `${client.clientId}-${flow.sent++}`;
      payload.write(tag.padEnd(24), 0);
      client.publish('drain/load', payload, 1, tag);
    }
  };
  client.onAck = ({ code, tag }) => {
    if (accepted(code)) {
      flow.acked.add(tag as string);
      if (signalled()) flow.ackedAfterSignal++;
    } else if (code !== -1) flow.refused++;
    pump();
  };
  pump();
  return flow;
}

test('SIGTERM under load drains acknowledgements and storage commits within the grace period, then exits 0', { timeout: 60_000 }, async (t) => {
  const broker = await BrokerProcess.start(t, {
    backend: 'sqlite',
    durability: 'full',
    toml: `[limits]\nshutdown_grace_ms = ${GRACE_MS}\nmax_queued = 1000000\n`,
  });
  const port = broker.port;

  const keeper = await LoadClient.connect({ port, clientId: 'keeper', version: 5, clean: false, sessionExpiry: 3600 });
  await keeper.subscribe([{ filter: 'drain/#', qos: 1 }]);
  await keeper.end();

  let signalledAt = 0;
  const flows: Flow[] = [];
  for (const p of PUBLISHERS) {
    const client = await LoadClient.connect({ port, clientId: p.id, version: p.version });
    t.after(() => client.destroy());
    flows.push(startFlow(client, 16384, () => signalledAt > 0));
  }
  await new Promise((r) => setTimeout(r, 2000));
  const ackedBefore = flows.reduce((n, f) => n + f.acked.size, 0);
  assert.ok(ackedBefore > 100, `the load runs (${ackedBefore} acknowledged in 2 s)`);

  signalledAt = performance.now();
  const code = await broker.stop(GRACE_MS + 15_000);
  const exitMs = performance.now() - signalledAt;
  await Promise.all(flows.map((f) => f.client.closed));

  const acked = new Set<string>();
  for (const f of flows) for (const tag of f.acked) acked.add(tag);
  const afterSignal = flows.reduce((n, f) => n + f.ackedAfterSignal, 0);
  const drainedLine = /\{[^\n]*"msg":"shutdown: acknowledgements drained"[^\n]*/.exec(broker.output())?.[0];
  const drain = drainedLine === undefined ? undefined : (JSON.parse(drainedLine) as { ms: number; waits: number });
  t.diagnostic(`exit code ${code} ${exitMs.toFixed(0)} ms after SIGTERM (grace ${GRACE_MS} ms); ${acked.size} acknowledged, ${afterSignal} of them after SIGTERM`);
  t.diagnostic(drain === undefined ? 'nothing left to drain at SIGTERM' : `drain: ${drain.waits} ack chains and commits waited for, ${drain.ms} ms`);
  assert.equal(code, 0, broker.output().slice(-3000));
  assert.ok(exitMs < GRACE_MS + 5000, `exited ${exitMs.toFixed(0)} ms after SIGTERM`);
  for (const f of flows) {
    if (f.client.version === 5) assert.equal(f.client.disconnectReason, 0x8b, `${f.client.clientId}: DISCONNECT 0x8B (server shutting down)`);
    assert.equal(f.refused, 0, `${f.client.clientId}: refused publishes`);
  }
  const errors = broker.output().split('\n').filter((l) => l.includes('"level":50'));
  assert.deepEqual(errors, [], 'no error lines in the broker log');

  // What the session holds after a restart: exactly what was acknowledged.
  await broker.start();
  const stored = new Set<string>();
  const back = await LoadClient.connect({
    port,
    clientId: 'keeper',
    version: 5,
    clean: false,
    sessionExpiry: 3600,
    onMessage: (p) => stored.add(p.payload.subarray(0, 24).toString().trim()),
  });
  t.after(() => back.destroy());
  const deadline = Date.now() + 30_000;
  let last = -1;
  // Until every acknowledged message arrived and nothing more comes for a moment.
  while (Date.now() < deadline) {
    const missing = [...acked].some((tag) => !stored.has(tag));
    if (!missing && stored.size === last) break;
    last = stored.size;
    await new Promise((r) => setTimeout(r, 300));
  }
  const missing = [...acked].filter((tag) => !stored.has(tag));
  const unacked = [...stored].filter((tag) => !acked.has(tag));
  t.diagnostic(`after restart: ${stored.size} stored; acknowledged but missing ${missing.length}; stored but never acknowledged ${unacked.length}`);
  assert.deepEqual(missing.slice(0, 10), [], 'every acknowledged message was stored');
  assert.deepEqual(unacked.slice(0, 10), [], 'every publish the broker read and stored was acknowledged before it closed');
  await back.end();
  assert.equal(await broker.stop(), 0);
});
