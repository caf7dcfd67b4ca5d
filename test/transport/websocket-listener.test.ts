import assert from 'node:assert/strict';
import { once } from 'node:events';
import type http from 'node:http';
import { test } from 'node:test';
import { WebSocket } from 'ws';
import { firstChunk, startListener, within } from './harness.js';

function open(t: { after(fn: () => void): void }, url: string, protocols: string[]): WebSocket {
  const ws = new WebSocket(url, protocols);
  ws.on('error', () => {});
  t.after(() => ws.terminate());
  return ws;
}

test('ws: binary frames both ways with the "mqtt" subprotocol; old clients get "mqttv3.1"', async (t) => {
  const run = await startListener(t, { type: 'ws' });
  const ws = open(t, `ws://127.0.0.1:${run.port}/mqtt`, ['mqtt']);
  await within(once(ws, 'open'), 3000, 'ws open');
  assert.equal(ws.protocol, 'mqtt');
  const { stream, info } = await run.next();
  assert.deepEqual([info.transport, info.remoteAddress, info.loopback], ['ws', '127.0.0.1', true]);
  ws.send(Buffer.from([0xc0, 0x00]));
  assert.deepEqual([...(await firstChunk(stream))], [0xc0, 0x00]);
  stream.write(Buffer.from([0xd0, 0x00]));
  const [data, isBinary] = (await once(ws, 'message')) as [Buffer, boolean];
  assert.deepEqual([[...data], isBinary], [[0xd0, 0x00], true]);

  const old = open(t, `ws://127.0.0.1:${run.port}/mqtt`, ['mqttv3.1']);
  await within(once(old, 'open'), 3000, 'mqttv3.1 open');
  assert.equal(old.protocol, 'mqttv3.1');
});

test('ws: a text frame closes the connection [MQTT-6.0.0-1]', async (t) => {
  const run = await startListener(t, { type: 'ws' });
  const ws = open(t, `ws://127.0.0.1:${run.port}/mqtt`, ['mqtt']);
  await within(once(ws, 'open'), 3000, 'ws open');
  const { stream } = await run.next();
  const closed = new Promise((resolve) => stream.once('close', resolve));
  ws.send('not binary');
  const [code] = (await within(once(ws, 'close'), 3000, 'server closed the WebSocket')) as [number];
  assert.ok(code === 1003 || code === 1006, `close code ${code}`);
  await within(closed, 3000, 'broker stream closed');
});

test('ws: only the configured path upgrades; plain HTTP gets 426 there and 404 elsewhere', async (t) => {
  const run = await startListener(t, { type: 'ws', path: '/broker' });
  const wrong = open(t, `ws://127.0.0.1:${run.port}/mqtt`, ['mqtt']);
  const [, res] = (await within(once(wrong, 'unexpected-response'), 3000, 'refused upgrade')) as [unknown, http.IncomingMessage];
  assert.equal(res.statusCode, 404);
  assert.equal((await fetch(`http://127.0.0.1:${run.port}/broker`)).status, 426);
  assert.equal((await fetch(`http://127.0.0.1:${run.port}/`)).status, 404);
  const right = open(t, `ws://127.0.0.1:${run.port}/broker`, ['mqtt']);
  await within(once(right, 'open'), 3000, 'upgrade on the configured path');
  await run.next();
});

test('ws: the broker destroying its stream closes the WebSocket', async (t) => {
  const run = await startListener(t, { type: 'ws' });
  const ws = open(t, `ws://127.0.0.1:${run.port}/mqtt`, ['mqtt']);
  await within(once(ws, 'open'), 3000, 'ws open');
  const { stream } = await run.next();
  stream.destroy();
  await within(once(ws, 'close'), 3000, 'client saw the close');
});
