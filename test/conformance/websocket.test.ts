/**
 * MQTT 5.0 over WebSocket [MQTT 5.0 §6]: subprotocol selection and packets
 * that do not align with WebSocket frames, through the whole broker.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { suite, test } from 'node:test';
import type { TestContext } from 'node:test';
import { WebSocket } from 'ws';
import { TERN_ONLY } from '../helpers/broker.js';
import { within } from '../helpers/mqtt-client.js';
import { P, connect, decode, publish, subscribe, type Packet5 } from './helpers/v5.js';

const T = { timeout: 10_000, skip: TERN_ONLY };

interface WsBroker {
  listen(): Promise<Array<{ port: number }>>;
  close(): Promise<void>;
}

const BROKER_MODULE = '../../src/broker/broker.js';

async function wsBroker(t: TestContext): Promise<number> {
  const mod = (await import(BROKER_MODULE)) as { createBroker(o: object): WsBroker };
  const broker = mod.createBroker({
    listeners: [{ type: 'ws', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'memory' },
    log: { level: 'silent' },
  });
  t.after(() => broker.close());
  const [address] = await broker.listen();
  assert.ok(address !== undefined);
  return address.port;
}

/** A WebSocket MQTT client that collects server packets (assumes whole packets per frame on receive). */
async function wsClient(t: TestContext, port: number): Promise<{ ws: WebSocket; packets: Packet5[]; next(): Promise<Packet5> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ['mqtt']);
  ws.on('error', () => {});
  t.after(() => ws.terminate());
  await within(once(ws, 'open'), 3000, 'WebSocket open');
  const packets: Packet5[] = [];
  let buffer = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  ws.on('message', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (buffer.length < 2) break;
      let len = 0;
      let mul = 1;
      let i = 1;
      for (; i < buffer.length; i++) {
        const b = buffer[i] as number;
        len += (b & 0x7f) * mul;
        mul *= 128;
        if ((b & 0x80) === 0) break;
      }
      i += 1;
      if (buffer.length < i + len) break;
      packets.push(decode(buffer[0] as number, buffer.subarray(i, i + len), i + len));
      buffer = buffer.subarray(i + len);
    }
    wake?.();
  });
  const next = async (): Promise<Packet5> => {
    const deadline = Date.now() + 3000;
    while (packets.length === 0) {
      if (Date.now() > deadline) throw new Error('no packet over WebSocket');
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 100);
      });
    }
    return packets.shift()!;
  };
  return { ws, packets, next };
}

suite('MQTT 5.0 over WebSocket', { concurrency: 2 }, () => {
  test('the server selects the "mqtt" subprotocol [MQTT-6.0.0-4]', T, async (t) => {
    const port = await wsBroker(t);
    const { ws } = await wsClient(t, port);
    assert.equal(ws.protocol, 'mqtt');
  });

  test('packets split across frames and several packets in one frame are both understood [MQTT-6.0.0-2]', T, async (t) => {
    const port = await wsBroker(t);
    const c = await wsClient(t, port);
    const bytes = Buffer.concat([connect(), subscribe(1, [{ filter: 'ws/t', qos: 1 }]), publish({ topic: 'ws/t', payload: 'over ws', qos: 1, id: 2 })]);
    // Frame boundaries that cut packets (and their fixed headers) anywhere.
    for (const [from, to] of [
      [0, 1],
      [1, 7],
      [7, 30],
      [30, bytes.length],
    ] as const) {
      c.ws.send(bytes.subarray(from, to), { binary: true });
    }
    const names: string[] = [];
    let message: Packet5 | undefined;
    for (let i = 0; i < 4; i++) {
      const p = await c.next();
      names.push(p.name);
      if (p.name === 'publish') message = p;
    }
    assert.deepEqual(names.slice(0, 2), ['connack', 'suback']);
    assert.deepEqual(names.slice(2).sort(), ['puback', 'publish']);
    assert.equal(message?.payload.toString(), 'over ws');
    c.ws.send(P.puback(message!.packetId), { binary: true });
  });
});
