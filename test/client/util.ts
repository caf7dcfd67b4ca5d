/** Small awaitables for client tests; every wait is bounded. */
import type { PublishPacket } from '../../src/codec/types.js';
import type { MqttClient } from '../../src/client/client.js';

/** Resolves with the next `n` messages received by `client`. */
export function collect(client: MqttClient, n: number, timeoutMs = 5000): Promise<PublishPacket[]> {
  return new Promise((resolve, reject) => {
    const got: PublishPacket[] = [];
    const onMessage = (p: PublishPacket): void => {
      got.push(p);
      if (got.length === n) {
        clearTimeout(timer);
        client.off('message', onMessage);
        resolve(got);
      }
    };
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`got ${got.length} of ${n} messages within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('message', onMessage);
  });
}

/**
 * The arguments of the next `event` on `client`, within `timeoutMs`. Unlike
 * events.once it does not listen for 'error', which the client only emits
 * when someone listens.
 */
export function next(
  client: MqttClient,
  event: 'connect' | 'close' | 'message' | 'pingresp' | 'reconnect' | 'disconnect',
  timeoutMs = 5000,
): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const onEvent = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      client.off(event, onEvent);
      reject(new Error(`no ${event} event within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once(event, onEvent);
  });
}
