/**
 * The kill scenario, shared by the acceptance test (a few kills) and the
 * soak script (bench/bridge/kill-soak.ts, many): a publisher runs at the
 * local broker the whole time while `tern bridge` (a child process) is
 * SIGKILLed again and again, alternately while it ingests with the remote
 * unreachable (a backlog builds) and while it replays that backlog; then a
 * SIGTERM during a replay, and a last run that drains everything.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMosquitto, startTern, type TestBroker } from './brokers.js';
import { ChildBridge, writeBridgeToml } from './child-bridge.js';
import { FaultProxy } from './fault-proxy.js';
import { checkDelivery, Collector, Publisher, sleep, type DeliveryReport } from './traffic.js';

export const STATE = 'tern/bridge/edge1/state';

export interface KillRunResult extends DeliveryReport {
  kills: number;
  published: number;
}

export async function killRun(kills: number, log: (msg: string) => void = () => undefined): Promise<KillRunResult> {
  const cleanup: Array<() => Promise<void> | void> = [];
  try {
    const local: TestBroker = await startTern();
    cleanup.push(() => local.close());
    const remote = await startMosquitto();
    cleanup.push(() => remote.close());
    const proxy = await FaultProxy.start(remote.host, remote.port);
    cleanup.push(() => proxy.close());
    const collector = new Collector(remote, 'devices/#');
    await collector.connect(STATE);
    cleanup.push(() => collector.close());
    const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-kill-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    const child = new ChildBridge(writeBridgeToml({ dir, local, remote: { host: '127.0.0.1', port: proxy.port } }));
    cleanup.push(async () => {
      await child.stop('SIGKILL');
    });
    // The local broker keeps messages only for sessions that exist: let the bridge subscribe first.
    const subscribed = new Promise<void>((resolve) => {
      local.broker!.on('subscribed', (clientId) => {
        if (clientId === 'tern-bridge-edge1') resolve();
      });
    });
    proxy.refuse();
    child.start();
    await subscribed;
    await child.stop('SIGKILL');
    const pub = new Publisher(local);
    await pub.connect();
    cleanup.push(() => pub.close());
    pub.run(4, 5); // ~600-800 msg/s

    const online = async (): Promise<void> => {
      const ok = await collector.until(() => collector.retained.get(STATE) === 'online', 15_000);
      assert.ok(ok, `bridge did not come online: ${child.output}`);
    };

    for (let k = 0; k < kills; k++) {
      const midReplay = k % 2 === 1;
      collector.retained.delete(STATE);
      if (midReplay) {
        // Replaying the backlog built by the previous run: kill it part-way.
        proxy.pass();
        const before = collector.received.length;
        child.start();
        await online();
        await collector.until(() => collector.received.length > before + 200, 10_000);
        await sleep(Math.floor(Math.random() * 150));
      } else {
        // Ingesting with the remote unreachable: kill it mid-commit-stream.
        proxy.refuse();
        child.start();
        await sleep(1200 + Math.floor(Math.random() * 600));
      }
      await child.stop('SIGKILL');
      log(`kill ${k + 1}/${kills} (${midReplay ? 'mid-replay' : 'mid-ingest'}): published ${pub.next}, received ${collector.received.length}`);
      if (midReplay) {
        // The remote publishes the will: `offline`.
        assert.ok(await collector.until(() => collector.retained.get(STATE) === 'offline', 5000), 'LWT offline after SIGKILL');
      }
    }

    // SIGTERM during a replay: a clean stop, `offline` published by the bridge itself.
    proxy.refuse();
    child.start();
    await sleep(1200);
    proxy.pass();
    const before = collector.received.length;
    await online();
    await collector.until(() => collector.received.length > before + 100, 10_000);
    collector.retained.delete(STATE);
    const code = await child.stop('SIGTERM');
    assert.equal(code, 0, `clean exit after SIGTERM: ${child.output}`);
    assert.ok(await collector.until(() => collector.retained.get(STATE) === 'offline', 3000), 'offline after SIGTERM');

    // Last run: stop publishing, drain everything.
    child.start();
    await online();
    await pub.stop();
    await pub.settle();
    const all = await collector.until(() => collector.has(pub.acked), 30_000);
    const report = checkDelivery(pub.acked, collector.received, { maxDuplicates: (kills + 1) * 300 });
    assert.ok(all);
    assert.equal(await child.stop('SIGTERM'), 0);
    return { ...report, kills, published: pub.acked.length };
  } finally {
    for (const c of cleanup.reverse()) await c();
  }
}
