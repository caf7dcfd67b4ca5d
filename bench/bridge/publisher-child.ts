/**
 * A QoS 1 publisher in its own process: `publisher-child.ts HOST PORT COUNT [RATE]`.
 * COUNT messages to sensors/<n % 100> as fast as the broker acknowledges
 * them (RATE = 0) or at RATE msg/s; prints {published, ms} when all are acknowledged.
 */
import { MqttClient } from '../../src/client/client.js';

const [host, port, countArg, rateArg] = process.argv.slice(2);
const count = Number(countArg);
const rate = Number(rateArg ?? 0);
const client = new MqttClient({ host: host!, port: Number(port), clientId: `bench-pub-${process.pid}`, maxInflight: 1000, keepalive: 60 });
await client.connect();
const payload = Buffer.alloc(100, 0x61);
const t0 = performance.now();
let acked = 0;
let sent = 0;
const done = new Promise<void>((resolve) => {
  const cb = (err: Error | null): void => {
    if (err === null) acked++;
    if (acked === count) resolve();
  };
  const pump = (): void => {
    // Keep at most ~5000 queued in the client: enough to fill any window.
    const target = rate > 0 ? Math.min(count, Math.floor(((performance.now() - t0) / 1000) * rate)) : count;
    while (sent < target && sent - acked < 5000) {
      client.publishWithCallback(`sensors/${sent % 100}`, payload, 1, false, undefined, cb);
      sent++;
    }
    if (sent < count) setTimeout(pump, rate > 0 ? 5 : 1);
  };
  pump();
});
await done;
process.stdout.write(`${JSON.stringify({ published: count, ms: Math.round(performance.now() - t0) })}\n`);
await client.end();
