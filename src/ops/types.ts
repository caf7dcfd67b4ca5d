/**
 * What the operations module accepts from the rest of Tern: interfaces that
 * other parts (auth's ban list, the bridge, config reload, storage) provide.
 */
import type { BigQueryOptions } from '@google-cloud/bigquery';

/** One ban: refuse (and kick) clients by client id, user name or remote address. */
export interface Ban {
  kind: 'clientId' | 'username' | 'address';
  value: string;
  reason?: string;
  /** When the ban lapses, ISO 8601; absent: never. */
  expiresAt?: string;
  /** When it was made, ISO 8601 (set by the ban list). */
  createdAt?: string;
}

export const BAN_KINDS = ['clientId', 'username', 'address'] as const;

/** The ban list the auth layer provides; the admin API views and edits it through this. */
export interface BanList {
  list(): readonly Ban[] | Promise<readonly Ban[]>;
  add(ban: Ban): void | Promise<void>;
  /** Remove the ban on (kind, value); false when there was none. */
  remove(kind: Ban['kind'], value: string): boolean | Promise<boolean>;
}

/** A readiness condition for /readyz besides "every listener bound" (storage open, cluster joined, ...). */
export interface ReadinessCheck {
  name: string;
  check(): boolean | Promise<boolean>;
}

/** One bridge's state, for the dashboard, /api/v1/bridges and the tern_bridge_* metrics. */
export interface BridgeStatus {
  name: string;
  /** The remote link: `up` (connected), `connecting`, `down`, `closed`. */
  state: string;
  remote?: string;
  /** The local link (`up` when connected to this broker). */
  local?: { state: string };
  /** Messages (and cache bytes) waiting for the remote's acknowledgement. */
  backlog?: { messages: number; bytes: number };
  /** QoS 1/2 messages sent to the remote and not yet acknowledged. */
  inflight?: number;
  /** Messages the remote acknowledged. */
  forwarded?: number;
  /** Remote messages published locally. */
  delivered?: number;
  /** Messages dropped, by reason. */
  drops?: Record<string, number>;
  /** Milliseconds since the remote's last acknowledgement; -1 before the first. */
  lastAckAgeMs?: number;
  [key: string]: unknown;
}

export interface OperationsOptions {
  /** Extra /readyz conditions. */
  readiness?: readonly ReadinessCheck[];
  /** The auth layer's ban list; without it the bans API answers 501. */
  bans?: BanList;
  /**
   * Re-read the configuration (POST /api/v1/reload); without it, 501. Its
   * result object is the response body; `reloaded: false` in it (the new
   * configuration was refused as a whole, see Broker.reload) answers 422.
   */
  reload?: () => object | Promise<object>;
  /** Bridge states; without it the bridges panel shows none. */
  bridges?: () => readonly BridgeStatus[] | Promise<readonly BridgeStatus[]>;
  /** Connections refused by authentication, for tern_auth_failures_total (when the core does not count them). */
  authFailures?: () => number;
  /** Extra BigQuery client options (an `authClient` that needs no network, in tests). */
  bigquery?: BigQueryOptions;
  /** Export process_* / nodejs_* metrics (default true). */
  processMetrics?: boolean;
}
