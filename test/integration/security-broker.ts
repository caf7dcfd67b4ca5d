/** Starts a real Tern broker with the given listeners (memory storage, silent log), closed in `t.after`. */
import type { TestContext } from 'node:test';
import { createBroker, type Broker } from '../../src/broker/broker.js';
import type { TernConfigInput } from '../../src/config/schema.js';

export interface SecureBroker {
  broker: Broker;
  /** Bound ports, in listener order. */
  ports: number[];
  /** Resolves with the remote address of the next client that connects (the broker's clientConnected event). */
  nextClientAddress(timeoutMs?: number): Promise<{ clientId: string; address: string }>;
}

export async function startSecureBroker(t: TestContext, listeners: NonNullable<TernConfigInput['listeners']>, extra: TernConfigInput = {}): Promise<SecureBroker> {
  const broker = createBroker({ ...extra, listeners, storage: { backend: 'memory' }, log: { level: 'silent' } });
  t.after(() => broker.close());
  const addresses = await broker.listen();
  return {
    broker,
    ports: addresses.map((a) => a.port),
    nextClientAddress(timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no client connected in time')), timeoutMs);
        broker.once('clientConnected', (clientId, info) => {
          clearTimeout(timer);
          resolve({ clientId, address: info.address });
        });
      });
    },
  };
}
