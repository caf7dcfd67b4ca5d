/**
 * Protocol abuse over real sockets: each abuse gets its documented response
 * (a close, a limit, an answer), and a healthy client's round-trip latency,
 * measured before and during the abuse, stays within 2x (plus a small slack
 * for this shared 2-core machine).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BrokerProcess } from '../helpers/broker-process.js';
import { connectMqtt, medianRoundTrip, probeClient } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const T = { timeout: 60_000 };

test('abusive clients are answered per the rules while a healthy client keeps its latency', T, async (t) => {
  // A child process: the abusive clients' own work in this process must not be what the probe measures.
  const broker = await BrokerProcess.start(t, {
    backend: 'memory',
    toml: '[limits]\nmax_packet_size = 1048576\nconnect_timeout_ms = 1000\n',
  });
  const port = broker.port;
  const url = `mqtt://127.0.0.1:${port}`;
  const healthy = await probeClient(t, url);
  await medianRoundTrip(healthy, 10); // warm-up
  const baseline = await medianRoundTrip(healthy, 30);

  const abuses: Array<[string, () => Promise<void>]> = [
    [
      'a 4-byte remaining length announcing 256 MiB is refused from the fixed header [MQTT-2.2.3]',
      async () => {
        const c = await RawClient.connected(port, t);
        const started = Date.now();
        c.send(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
        // No body byte is ever sent: only the fixed header can have caused the close.
        await c.expectClose(5000);
        assert.ok(Date.now() - started < 5000);
      },
    ],
    [
      'a remaining length longer than the bytes sent waits, then keep-alive closes it [MQTT-3.1.2-24]',
      async () => {
        const c = await RawClient.connected(port, t, { keepalive: 1 });
        c.send(Buffer.concat([Buffer.from([0x30, 100]), P.u16(3), Buffer.from('a/b')]));
        await c.expectClose(4000);
      },
    ],
    [
      'a remaining length shorter than the packet is malformed: closed [MQTT-4.8.0-1]',
      async () => {
        const c = await RawClient.connected(port, t);
        c.send(Buffer.concat([Buffer.from([0x30, 4]), P.u16(50), Buffer.from('ab'), Buffer.from('trailing garbage')]));
        await c.expectClose(2000);
      },
    ],
    [
      'a slowloris CONNECT, one byte at a time, is closed at the connect timeout',
      async () => {
        const c = await RawClient.connect(port, t);
        const bytes = P.connect({ clientId: 'slow' });
        let i = 0;
        const timer = setInterval(() => {
          if (i < bytes.length) c.send(bytes.subarray(i, ++i));
        }, 400);
        try {
          await c.expectClose(4000);
        } finally {
          clearInterval(timer);
        }
        assert.ok(i < bytes.length, 'closed before the CONNECT was complete');
      },
    ],
    [
      'a SUBSCRIBE with 5000 filters gets one SUBACK with 5000 codes [MQTT-3.9.3-1]',
      async () => {
        const c = await RawClient.connected(port, t);
        const filters = Array.from({ length: 5000 }, (_, i) => ({ filter: `many/${i}/+`, qos: 1 }));
        c.send(P.subscribe(7, filters));
        const suback = await c.expectPacket('suback', 10_000);
        assert.equal(suback.id, 7);
        assert.equal(suback.granted.length, 5000);
        assert.ok(suback.granted.every((code) => code === 1));
      },
    ],
    [
      '65,535 QoS 2 packet ids in flight without PUBREL are all acknowledged and the client still works',
      async () => {
        const c = await RawClient.connected(port, t);
        for (let id = 1; id <= 65535; id++) c.send(P.publish({ topic: 'nobody/listens', payload: 'x', qos: 2, id }));
        let recs = 0;
        while (recs < 65535) {
          await c.expectPacket('pubrec', 20_000);
          recs++;
        }
        c.send(P.packet(P.PT.PINGREQ, 0, Buffer.alloc(0)));
        await c.expectPacket('pingresp');
      },
    ],
    [
      'a PUBREL for an unknown packet id is answered with PUBCOMP [MQTT-4.3.3-11]',
      async () => {
        const c = await RawClient.connected(port, t);
        c.send(P.packet(P.PT.PUBREL, 2, P.u16(4242)));
        const comp = await c.expectPacket('pubcomp');
        assert.equal(comp.id, 4242);
      },
    ],
    [
      'packets before CONNECT close the connection [MQTT-3.1.0-1]',
      async () => {
        const c = await RawClient.connect(port, t);
        c.send(P.publish({ topic: 'a', payload: 'x', qos: 0 }));
        await c.expectClose(2000);
      },
    ],
  ];

  // All abuses at once, while the healthy client is measured again.
  const running = Promise.all(abuses.map(async ([name, run]) => run().catch((err: Error) => assert.fail(`${name}: ${err.message}`))));
  const during = await medianRoundTrip(healthy, 30);
  await running;
  t.diagnostic(`healthy client median round trip: ${baseline.toFixed(2)} ms before, ${during.toFixed(2)} ms during abuse`);
  assert.ok(during <= baseline * 2 + 5, `latency ${during.toFixed(2)} ms during abuse vs ${baseline.toFixed(2)} ms before`);
});
