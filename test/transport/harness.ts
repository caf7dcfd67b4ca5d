/** Runs one listener with a recording connection handler; closes everything in `t.after`. */
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import type { TestContext } from 'node:test';
import { listenerSchema, type ListenerConfig } from '../../src/config/schema.js';
import { createListener } from '../../src/transport/create.js';
import type { Listener, TransportInfo } from '../../src/transport/listener.js';

export interface Accepted {
  stream: Duplex;
  info: TransportInfo;
}

export interface RunningListener {
  listener: Listener;
  port: number;
  /** Connections handed to the "broker", in order. */
  accepted: Accepted[];
  /** Resolves with the next accepted connection (rejects after `ms`). */
  next(ms?: number): Promise<Accepted>;
}

export async function startListener(t: TestContext, input: Record<string, unknown>): Promise<RunningListener> {
  const config: ListenerConfig = listenerSchema.parse({ host: '127.0.0.1', port: 0, ...input });
  const accepted: Accepted[] = [];
  const waiters: Array<(a: Accepted) => void> = [];
  const streams: Duplex[] = [];
  const listener = createListener(config, (stream, info) => {
    streams.push(stream);
    stream.on('error', () => {});
    const a = { stream, info };
    accepted.push(a);
    waiters.shift()?.(a);
  });
  const address = await listener.start();
  t.after(async () => {
    await listener.close();
    for (const s of streams) s.destroy();
  });
  let taken = 0;
  return {
    listener,
    port: address.port,
    accepted,
    next(ms = 3000) {
      const ready = accepted[taken];
      if (ready !== undefined) {
        taken++;
        return Promise.resolve(ready);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no connection accepted within ${ms} ms`)), ms);
        waiters.push((a) => {
          clearTimeout(timer);
          taken++;
          resolve(a);
        });
      });
    },
  };
}

/** First chunk a stream delivers. */
export async function firstChunk(stream: Duplex): Promise<Buffer> {
  const [chunk] = (await once(stream, 'data')) as [Buffer];
  return chunk;
}

/** Bound a promise in time so a hang fails the test with a message. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
