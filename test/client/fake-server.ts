/**
 * A scripted MQTT server for client behaviour a real broker will not show on
 * demand (a small Receive Maximum, withheld acks, no PINGRESP, duplicate
 * QoS 2 deliveries). Packets are parsed and built with mqtt-packet, an
 * independent codec, so Tern's codec is never its own oracle (P8).
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';
import type { Packet as WirePacket } from 'mqtt-packet';

export interface FakeServer {
  readonly port: number;
  /** Every packet received, in order. */
  readonly received: WirePacket[];
  /** Resolves with the next received packet of `cmd` (bounded by `timeoutMs`). */
  next(cmd: WirePacket['cmd'], timeoutMs?: number): Promise<WirePacket>;
  send(packet: WirePacket): void;
  readonly socket: () => Socket | null;
  close(): Promise<void>;
}

export interface FakeServerOptions {
  protocolVersion: 4 | 5;
  /** Reply to CONNECT with this CONNACK (default: accepted, no properties). */
  connack?: WirePacket;
  /** Answer PINGREQ (default true). */
  pingresp?: boolean;
}

export async function startFakeServer(opts: FakeServerOptions): Promise<FakeServer> {
  const received: WirePacket[] = [];
  const waiters: Array<{ cmd: string; resolve: (p: WirePacket) => void }> = [];
  const backlog: WirePacket[] = [];
  let current: Socket | null = null;
  const gen = { protocolVersion: opts.protocolVersion };

  const server: Server = createServer((socket) => {
    current = socket;
    const parser = mqttPacket.parser(gen);
    parser.on('packet', (p: WirePacket) => {
      received.push(p);
      if (p.cmd === 'connect') {
        socket.write(mqttPacket.generate(opts.connack ?? { cmd: 'connack', returnCode: 0, reasonCode: 0, sessionPresent: false }, gen));
      } else if (p.cmd === 'pingreq' && opts.pingresp !== false) {
        socket.write(mqttPacket.generate({ cmd: 'pingresp' }, gen));
      }
      const i = waiters.findIndex((w) => w.cmd === p.cmd);
      if (i >= 0) waiters.splice(i, 1)[0]!.resolve(p);
      else backlog.push(p);
    });
    socket.on('data', (d: Buffer) => parser.parse(d));
    socket.on('error', () => {});
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');

  return {
    port: address.port,
    received,
    next(cmd, timeoutMs = 3000) {
      const i = backlog.findIndex((p) => p.cmd === cmd);
      if (i >= 0) return Promise.resolve(backlog.splice(i, 1)[0]!);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${cmd} within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          cmd,
          resolve: (p) => {
            clearTimeout(timer);
            resolve(p);
          },
        });
      });
    },
    send(packet) {
      current?.write(mqttPacket.generate(packet, gen));
    },
    socket: () => current,
    async close() {
      current?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
