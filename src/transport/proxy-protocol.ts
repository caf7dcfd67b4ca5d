/**
 * PROXY protocol v1 (text) and v2 (binary) headers, as sent by HAProxy,
 * nginx (`proxy_protocol on`), AWS NLB and others in front of a TCP or TLS
 * listener. Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 *
 * A listener with `proxy_protocol = true` reads this header before anything
 * else (before the TLS handshake on tls listeners) and reports the source
 * address it carries as the client address. The header is mandatory there:
 * a connection without one is closed, so a client that reaches the port
 * directly cannot pose as someone else by sending no header.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Socket } from 'node:net';
import { ternError } from '../errors.js';

export interface ProxyHeader {
  /** 1 or 2. */
  readonly version: 1 | 2;
  /**
   * `proxy`: the addresses are the real client's and server's.
   * `local`: the proxy speaks for itself (health checks, v2 LOCAL, v1
   * UNKNOWN, unsupported families): use the socket's own address.
   */
  readonly command: 'proxy' | 'local';
  readonly sourceAddress: string | undefined;
  readonly sourcePort: number | undefined;
  readonly destinationAddress: string | undefined;
  readonly destinationPort: number | undefined;
  /** Bytes the header occupies; MQTT (or TLS) bytes start here. */
  readonly length: number;
}

/** v1: "a 108-byte buffer is always enough to store all the line and a trailing zero". */
const V1_MAX = 107;
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** Fixed part of a v2 header: signature, version/command, family, length. */
const V2_FIXED = 16;
/**
 * Largest v2 address block + TLVs accepted. The field allows 65535, but real
 * proxies send well under 1 KiB (AWS adds a VPC endpoint TLV); a cap keeps an
 * unauthenticated peer from making us buffer 64 KiB per connection (P7).
 */
const V2_MAX_BODY = 2048;

const fail = (detail: string): never => {
  throw ternError('ERR_PROXY_PROTOCOL', detail);
};

/** Does `buf` (possibly short) agree with `prefix` on their common length? */
function startsWithPartial(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.compare(prefix, 0, n, 0, n) === 0;
}

function parsePort(text: string | undefined): number {
  if (text === undefined || !/^(0|[1-9][0-9]{0,4})$/.test(text)) return fail(`bad port "${text ?? ''}"`);
  const n = Number(text);
  return n <= 65535 ? n : fail(`bad port "${text}"`);
}

function parseV1(buf: Buffer): ProxyHeader | undefined {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) {
    if (buf.length >= V1_MAX) fail('v1 header longer than 107 bytes');
    return undefined;
  }
  if (end + 2 > V1_MAX) fail('v1 header longer than 107 bytes');
  const parts = buf.toString('latin1', V1_PREFIX.length, end).split(' ');
  const length = end + 2;
  const proto = parts[0];
  if (proto === 'UNKNOWN') {
    return { version: 1, command: 'local', sourceAddress: undefined, sourcePort: undefined, destinationAddress: undefined, destinationPort: undefined, length };
  }
  if (proto !== 'TCP4' && proto !== 'TCP6') return fail(`v1 protocol "${proto ?? ''}"`);
  if (parts.length !== 5) fail('v1 header needs 4 address fields');
  const [, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const valid = proto === 'TCP4' ? isIPv4 : isIPv6;
  if (!valid(src) || !valid(dst)) fail(`v1 ${proto} address "${src}" / "${dst}"`);
  return {
    version: 1,
    command: 'proxy',
    sourceAddress: src,
    sourcePort: parsePort(sport),
    destinationAddress: dst,
    destinationPort: parsePort(dport),
    length,
  };
}

/** RFC 5952 text for 16 address bytes: lowercase, longest zero run (>= 2 groups) as `::`. */
export function formatIPv6(buf: Buffer, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(offset + i * 2));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function parseV2(buf: Buffer): ProxyHeader | undefined {
  if (buf.length < V2_FIXED) return undefined;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) fail(`v2 version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) fail(`v2 command ${cmd}`);
  const family = buf[13]!;
  const bodyLength = buf.readUInt16BE(14);
  if (bodyLength > V2_MAX_BODY) fail(`v2 header of ${bodyLength} bytes (limit ${V2_MAX_BODY})`);
  const length = V2_FIXED + bodyLength;
  if (buf.length < length) return undefined;
  const local = { version: 2, command: 'local', sourceAddress: undefined, sourcePort: undefined, destinationAddress: undefined, destinationPort: undefined, length } as const;
  if (cmd === 0) return local; // LOCAL: "the receiver must ... use the real connection endpoints"
  const o = V2_FIXED;
  switch (family) {
    case 0x11: // TCP over IPv4
    case 0x12: // UDP over IPv4
      if (bodyLength < 12) fail('v2 IPv4 address block too short');
      return {
        version: 2,
        command: 'proxy',
        sourceAddress: `${buf[o]}.${buf[o + 1]}.${buf[o + 2]}.${buf[o + 3]}`,
        destinationAddress: `${buf[o + 4]}.${buf[o + 5]}.${buf[o + 6]}.${buf[o + 7]}`,
        sourcePort: buf.readUInt16BE(o + 8),
        destinationPort: buf.readUInt16BE(o + 10),
        length,
      };
    case 0x21: // TCP over IPv6
    case 0x22: // UDP over IPv6
      if (bodyLength < 36) fail('v2 IPv6 address block too short');
      return {
        version: 2,
        command: 'proxy',
        sourceAddress: formatIPv6(buf, o),
        destinationAddress: formatIPv6(buf, o + 16),
        sourcePort: buf.readUInt16BE(o + 32),
        destinationPort: buf.readUInt16BE(o + 34),
        length,
      };
    default:
      // UNSPEC / AF_UNIX: no IP address to report; the spec says to accept
      // the connection and use the real endpoints.
      return local;
  }
}

/**
 * Parse a PROXY header at the start of `buf`. Returns undefined when more
 * bytes are needed; throws ERR_PROXY_PROTOCOL when `buf` cannot start a
 * valid header.
 */
export function parseProxyHeader(buf: Buffer): ProxyHeader | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] === 0x50 /* P */) {
    if (!startsWithPartial(buf, V1_PREFIX)) fail('no PROXY header');
    return buf.length <= V1_PREFIX.length ? undefined : parseV1(buf);
  }
  if (buf[0] === 0x0d) {
    if (!startsWithPartial(buf, V2_SIGNATURE)) fail('no PROXY header');
    return parseV2(buf);
  }
  return fail('no PROXY header');
}

/**
 * Read a PROXY header from a freshly accepted socket. On success any bytes
 * after the header are pushed back (`unshift`) and the socket is left in its
 * initial mode: the next `data` listener (the broker's connection) or a TLS
 * server wrapping it reads them first. On failure or timeout the socket is
 * destroyed and `done` gets the error.
 *
 * Reads with `readable` + `read()` rather than `data` + `pause()`: an
 * explicitly paused socket would not start flowing when the consumer
 * attaches its `data` listener later.
 */
export function readProxyHeader(socket: Socket, timeoutMs: number, done: (err: Error | null, header?: ProxyHeader) => void): void {
  let buf: Buffer | undefined;
  let finished = false;
  const finish = (err: Error | null, header?: ProxyHeader): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('readable', onReadable);
    socket.removeListener('close', onClose);
    if (err !== null) socket.destroy();
    done(err, header);
  };
  const onReadable = (): void => {
    let chunk: Buffer | null;
    while (!finished && (chunk = socket.read() as Buffer | null) !== null) {
      buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
      let header: ProxyHeader | undefined;
      try {
        header = parseProxyHeader(buf);
      } catch (err) {
        finish(err as Error);
        return;
      }
      if (header === undefined) continue;
      socket.removeListener('readable', onReadable);
      if (buf.length > header.length) socket.unshift(buf.subarray(header.length));
      finish(null, header);
    }
  };
  const onClose = (): void => finish(ternError('ERR_PROXY_PROTOCOL', 'connection closed before the header'));
  const timer = setTimeout(() => finish(ternError('ERR_PROXY_PROTOCOL', `no header within ${timeoutMs} ms`)), timeoutMs);
  socket.on('readable', onReadable);
  socket.on('close', onClose);
  // An error is followed by 'close'; this only keeps it from being unhandled.
  socket.on('error', () => {});
}
