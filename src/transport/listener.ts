/**
 * A listener turns accepted connections into Duplex streams plus
 * ConnectionInfo and hands them to the broker (P1). Nothing MQTT-specific.
 */
import type { Duplex } from 'node:stream';
import type { ConnectionInfo } from '../broker/connection.js';

export interface ListenerAddress {
  type: string;
  host: string;
  port: number;
}

export type ConnectionHandler = (stream: Duplex, info: ConnectionInfo) => void;

export interface Listener {
  readonly name: string;
  start(): Promise<ListenerAddress>;
  /** Stop accepting; existing connections are the broker's to close. */
  close(): Promise<void>;
}
