/**
 * PROXY protocol through the real broker: a raw socket plays the proxy,
 * writes a v1 or v2 header and then an MQTT CONNECT in the same write; the
 * broker answers CONNACK and reports the client address from the header.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { connect as connectPacket } from '../helpers/packets.js';
import { within } from '../transport/harness.js';
import { startSecureBroker } from './security-broker.js';

const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);

function v2Header(src: [number, number, number, number], srcPort: number): Buffer {
  const header = Buffer.alloc(28);
  Buffer.from('0d0a0d0a000d0a515549540a', 'hex').copy(header, 0);
  header[12] = 0x21; // v2, PROXY
  header[13] = 0x11; // TCP over IPv4
  header.writeUInt16BE(12, 14);
  header.set(src, 16);
  header.set([10, 0, 0, 1], 20);
  header.writeUInt16BE(srcPort, 24);
  header.writeUInt16BE(1883, 26);
  return header;
}

/** Send header + CONNECT, return the first bytes the broker answers. */
async function connectThroughProxy(t: { after(fn: () => void): void }, port: number, header: Buffer, clientId: string): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  socket.write(Buffer.concat([header, connectPacket({ clientId })]));
  const [reply] = (await within(once(socket, 'data'), 3000, 'CONNACK')) as [Buffer];
  return reply;
}

test('PROXY v1 and v2 headers: the broker accepts the CONNECT that follows and sees the real client address', async (t) => {
  // Behind a PROXY-protocol proxy clients count as remote, so anonymous access must be allowed explicitly.
  const { ports, nextClientAddress } = await startSecureBroker(t, [{ type: 'tcp', host: '127.0.0.1', port: 0, proxyProtocol: true }], {
    auth: { allowAnonymous: true },
  });
  const port = ports[0]!;

  let seen = nextClientAddress();
  const v1 = await connectThroughProxy(t, port, Buffer.from('PROXY TCP4 198.51.100.22 10.0.0.1 35646 1883\r\n'), 'via-v1');
  assert.deepEqual(v1, CONNACK_ACCEPTED);
  assert.deepEqual(await seen, { clientId: 'via-v1', address: '198.51.100.22' });

  seen = nextClientAddress();
  const v2 = await connectThroughProxy(t, port, v2Header([203, 0, 113, 7], 50000), 'via-v2');
  assert.deepEqual(v2, CONNACK_ACCEPTED);
  assert.deepEqual(await seen, { clientId: 'via-v2', address: '203.0.113.7' });
});

test('a client that skips the PROXY header is disconnected before MQTT starts', async (t) => {
  const { ports, broker } = await startSecureBroker(t, [{ type: 'tcp', host: '127.0.0.1', port: 0, proxyProtocol: true }]);
  let connected = false;
  broker.on('clientConnected', () => {
    connected = true;
  });
  const socket = net.connect(ports[0]!, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => assert.fail('no CONNACK expected'));
  socket.write(connectPacket({ clientId: 'direct' }));
  await within(once(socket, 'close'), 3000, 'server closed the connection');
  assert.equal(connected, false);
});
