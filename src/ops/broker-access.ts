/**
 * Every reach into the broker's internals that the operations module makes
 * (retained store, kicking a client, ending a session) goes through here,
 * so a change inside src/broker touches one file of src/ops.
 */
import type { Broker } from '../broker/broker.js';
import type { Connection } from '../broker/connection.js';
import { Message } from '../broker/message.js';
import type { Session } from '../broker/session.js';
import { ReasonCode } from '../codec/constants.js';

export interface RetainedCounts {
  count: number;
  bytes: number;
}

export function retainedStats(broker: Broker): Promise<RetainedCounts> {
  return broker.core.durable.persistence.retainedStats();
}

/** Retained messages whose topic matches `filter`, sorted by topic. */
export async function matchRetained(broker: Broker, filter: string): Promise<Message[]> {
  const messages = await broker.core.matchRetained(filter);
  return messages.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
}

/** Clear the retained message on `topic` without routing anything; false when there was none. */
export async function deleteRetained(broker: Broker, topic: string): Promise<boolean> {
  const found = await matchRetained(broker, topic);
  if (found.length === 0) return false;
  await broker.core.storeRetained(new Message({ topic, payload: Buffer.alloc(0), qos: 0, retain: true }));
  return true;
}

/** The live connection of `clientId`, if connected. */
export function findConnection(broker: Broker, clientId: string): Connection | undefined {
  const session = broker.core.sessions.get(clientId);
  const link = session?.link;
  if (link !== null && link !== undefined) {
    for (const conn of broker.core.connections) if (conn === link) return conn;
  }
  for (const conn of broker.core.connections) if (conn.clientId === clientId && conn.connected) return conn;
  return undefined;
}

/**
 * Disconnect a client: v5 clients get DISCONNECT 0x98 (administrative
 * action). Resolves once the socket closed (bounded), false if not connected.
 */
export async function disconnectClient(broker: Broker, clientId: string, timeoutMs = 2000): Promise<boolean> {
  const conn = findConnection(broker, clientId);
  if (conn === undefined) return false;
  await new Promise<void>((resolve) => {
    if (conn.stream.destroyed) return resolve();
    const timer = setTimeout(() => {
      conn.destroy('administrative action');
      resolve();
    }, timeoutMs);
    conn.stream.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    conn.disconnect(ReasonCode.ADMINISTRATIVE_ACTION, 'administrative action');
  });
  return true;
}

/** End a session (disconnecting its client first); false when there is none. */
export async function endSession(broker: Broker, clientId: string): Promise<boolean> {
  const session: Session | undefined = broker.core.sessions.get(clientId);
  if (session === undefined) return false;
  const conn = findConnection(broker, clientId);
  if (conn !== undefined) {
    conn.cleanDisconnect = true; // an administrative end is not the client's failure: no will
    await disconnectClient(broker, clientId);
  }
  const current = broker.core.sessions.get(clientId);
  if (current !== undefined) broker.core.endSession(current);
  return true;
}
