import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { isTernError } from '../../src/errors.js';
import { parseProxyHeader } from '../../src/transport/proxy-protocol.js';
import { makePki, type TestPki } from './certs.js';
import { firstChunk, startListener, within } from './harness.js';

const SIG = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** Hand-built v2 header (independent of the parser). */
function v2(cmd: number, family: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([SIG, Buffer.from([0x20 | cmd, family]), len, body]);
}

const v2Tcp4 = v2(1, 0x11, Buffer.from([203, 0, 113, 7, 10, 0, 0, 1, 0xc3, 0x50, 0x07, 0x5b])); // 203.0.113.7:50000 -> 10.0.0.1:1883

describe('PROXY header parser', () => {
  test('v1 TCP4 and TCP6 give the client address; UNKNOWN means "use the socket address"', () => {
    const h = parseProxyHeader(Buffer.from('PROXY TCP4 198.51.100.22 10.0.0.1 35646 1883\r\nMQTT'));
    assert.deepEqual(
      { a: h?.sourceAddress, p: h?.sourcePort, cmd: h?.command, len: h?.length },
      { a: '198.51.100.22', p: 35646, cmd: 'proxy', len: 46 },
    );
    assert.equal(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 4000 1883\r\n'))?.sourceAddress, '2001:db8::1');
    assert.equal(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))?.command, 'local');
  });

  test('v2 IPv4 and IPv6 addresses, LOCAL command, and TLVs after the addresses', () => {
    const h = parseProxyHeader(Buffer.concat([v2Tcp4, Buffer.from([0x10])]));
    assert.deepEqual([h?.sourceAddress, h?.sourcePort, h?.destinationPort, h?.length], ['203.0.113.7', 50000, 1883, 28]);
    const ip6 = Buffer.alloc(36);
    ip6.write('20010db8000000000000000000000042', 0, 'hex');
    ip6[31] = 1;
    ip6.writeUInt16BE(443, 32);
    assert.equal(parseProxyHeader(v2(1, 0x21, ip6))?.sourceAddress, '2001:db8::42');
    assert.equal(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))?.command, 'local');
    const withTlv = v2(1, 0x11, Buffer.concat([v2Tcp4.subarray(16), Buffer.from([0x04, 0x00, 0x02, 0x61, 0x62])]));
    assert.equal(parseProxyHeader(withTlv)?.length, withTlv.length);
  });

  test('a partial header asks for more bytes, byte by byte', () => {
    for (const full of [Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), v2Tcp4]) {
      for (let n = 0; n < full.length; n++) assert.equal(parseProxyHeader(full.subarray(0, n)), undefined, `prefix of ${n} bytes`);
      assert.ok(parseProxyHeader(full));
    }
  });

  test('garbage, bad addresses, bad ports, oversized headers and MQTT bytes are refused with ERR_PROXY_PROTOCOL', () => {
    const bad = [
      Buffer.from([0x10, 0x0c, 0x00, 0x04]), // a CONNECT without header
      Buffer.from('PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n'),
      Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n'),
      Buffer.from('PROXY TCP4 ::1 ::1 1 2\r\n'),
      Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`),
      Buffer.from('PROXZ'),
      Buffer.concat([SIG, Buffer.from([0x31, 0x11, 0, 0])]), // version 3
      Buffer.concat([SIG, Buffer.from([0x21, 0x11, 0xff, 0xff])]), // 64 KiB body
    ];
    for (const b of bad) assert.throws(() => parseProxyHeader(b), (err) => isTernError(err, 'ERR_PROXY_PROTOCOL'), b.toString('latin1'));
  });
});

describe('listeners with proxy_protocol', () => {
  let pki: TestPki;
  const cleanups: Array<() => void> = [];
  before(() => {
    pki = makePki({ after: (fn) => cleanups.push(fn) });
  });
  after(() => cleanups.forEach((fn) => fn()));

  test('tcp: the broker gets the PROXY source address and the bytes after the header (same segment)', async (t) => {
    const run = await startListener(t, { proxyProtocol: true });
    const socket = net.connect(run.port, '127.0.0.1');
    t.after(() => socket.destroy());
    socket.write(Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.22 10.0.0.1 35646 1883\r\n'), Buffer.from('MQTT bytes')]));
    const { stream, info } = await run.next();
    assert.deepEqual([info.remoteAddress, info.remotePort, info.proxyAddress], ['198.51.100.22', 35646, '127.0.0.1']);
    assert.equal(info.loopback, false, 'clients behind a proxy are not local even on a loopback bind');
    assert.equal(String(await firstChunk(stream)), 'MQTT bytes');
  });

  test('tcp: a connection without a header is closed and never reaches the broker', async (t) => {
    const run = await startListener(t, { proxyProtocol: true });
    const socket = net.connect(run.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54]));
    await within(once(socket, 'close'), 3000, 'server closed the socket');
    assert.equal(run.accepted.length, 0);
  });

  test('tls: the v2 header comes before the TLS handshake and names the client', async (t) => {
    const run = await startListener(t, { type: 'tls', proxyProtocol: true, certFile: pki.serverCert, keyFile: pki.serverKey });
    const raw = net.connect(run.port, '127.0.0.1');
    await once(raw, 'connect');
    raw.write(v2Tcp4);
    const client = tls.connect({ socket: raw, ca: readFileSync(pki.caCert), servername: 'localhost' });
    t.after(() => client.destroy());
    await within(once(client, 'secureConnect'), 3000, 'TLS over the proxied socket');
    client.write('hello');
    const { stream, info } = await run.next();
    assert.deepEqual([info.transport, info.remoteAddress, info.remotePort], ['tls', '203.0.113.7', 50000]);
    assert.equal(String(await firstChunk(stream)), 'hello');
  });
});
