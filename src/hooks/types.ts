/**
 * The hook and event vocabulary shared by the registry, plugins and the
 * broker (docs/hooks.md describes each one for plugin authors).
 *
 * Two kinds of extension point (STYLE P5):
 * - decision hooks (authenticate, authorizePublish, authorizeSubscribe,
 *   authorizeRead) answer allow / deny / defer, run in registration order,
 *   the first answer that is not `defer` wins, and all-defer means deny;
 * - message hooks (`message`) may rewrite or drop a message before routing;
 * - events (connect, publish, ...) are fire-and-forget notifications.
 *
 * Every hook may answer synchronously or with a Promise: the broker calls
 * them per message, and a synchronous answer costs no promise or microtask.
 */
import type { ConnectionInfo } from '../broker/connection.js';
import type { Properties, QoS } from '../codec/types.js';
import type { TransportInfo } from '../transport/listener.js';

export type MaybePromise<T> = T | PromiseLike<T>;

export type Decision = 'allow' | 'deny' | 'defer';

/** A decision with the MQTT 5 reason code to send on deny (default 0x87 Not authorized). */
export interface DecisionObject {
  readonly decision: Decision;
  readonly reasonCode?: number | undefined;
  /** For logs and the v5 Reason String. */
  readonly reason?: string | undefined;
}

export type DecisionResult = Decision | DecisionObject;

/**
 * Connection facts a hook sees. The listener fields (transport, loopback,
 * certificate, identity, proxyAddress) are present for connections that came
 * through a Tern listener, absent for streams given to `broker.handle()`.
 */
export type HookConnectionInfo = ConnectionInfo & Partial<Omit<TransportInfo, keyof ConnectionInfo>>;

/** The client a hook is asked about (the broker passes its connection object). */
export interface HookClient {
  readonly clientId: string;
  readonly username: string | undefined;
  readonly info: HookConnectionInfo;
}

/** An application message as hooks see it (a PUBLISH packet or a routed message). */
export interface HookMessage {
  readonly topic: string;
  readonly payload: Buffer;
  readonly qos: QoS;
  readonly retain: boolean;
  readonly properties?: Properties | undefined;
}

/** One authentication question: a CONNECT, or one step of an enhanced (AUTH) exchange. */
export interface AuthenticateRequest {
  readonly clientId: string;
  /** After `use_identity_as_username`, the certificate identity. */
  readonly username: string | undefined;
  readonly password: Buffer | undefined;
  readonly protocolLevel: number;
  /**
   * The same object for every step of one connection: key per-connection
   * state of a multi-step exchange on it (WeakMap).
   */
  readonly info: HookConnectionInfo;
  /** MQTT 5 Authentication Method; undefined for username/password authentication. */
  readonly method?: string | undefined;
  /** MQTT 5 Authentication Data of this step. */
  readonly data?: Buffer | undefined;
  /** 0 for the CONNECT, then 1, 2, ... for each AUTH packet of the exchange. */
  readonly step: number;
  /** True when the client started re-authentication (AUTH 0x19) on an open connection. */
  readonly reauthenticate: boolean;
}

/**
 * An authenticate answer. `continue` (enhanced auth only) sends `authData`
 * to the client in an AUTH packet (0x18) and waits for its next AUTH.
 */
export interface AuthenticateObject {
  readonly decision: Decision | 'continue';
  readonly reasonCode?: number | undefined;
  readonly reason?: string | undefined;
  /** Authentication Data for the CONNACK (allow) or AUTH packet (continue). */
  readonly authData?: Buffer | undefined;
  /** Replace the client's username (for example the subject of a token). */
  readonly username?: string | undefined;
}

export type AuthenticateResult = Decision | AuthenticateObject;

/** Hook name -> function type. */
export interface HookFunctions {
  authenticate: (request: AuthenticateRequest) => MaybePromise<AuthenticateResult>;
  authorizePublish: (client: HookClient, message: HookMessage) => MaybePromise<DecisionResult>;
  authorizeSubscribe: (client: HookClient, filter: string, qos: QoS) => MaybePromise<DecisionResult>;
  authorizeRead: (client: HookClient, message: HookMessage) => MaybePromise<DecisionResult>;
  /**
   * Before routing a client's (or the broker's, client undefined) message:
   * return a message to replace it, `null` to drop it, `undefined` to keep it.
   */
  message: (client: HookClient | undefined, message: HookMessage) => MaybePromise<HookMessage | null | undefined>;
}

export type HookName = keyof HookFunctions;

export const HOOK_NAMES: readonly HookName[] = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'authorizeRead', 'message'];

/** Notification events: listeners run synchronously, their errors are logged, their results ignored. */
export interface HookEvents {
  connect: [client: HookClient];
  disconnect: [client: HookClient, reason: string | undefined];
  subscribe: [client: HookClient, filter: string, qos: QoS];
  unsubscribe: [client: HookClient, filter: string];
  /** A message accepted for routing (after message hooks); client undefined for broker messages. */
  publish: [client: HookClient | undefined, message: HookMessage];
  /** A message written to a subscriber (QoS 0) or acknowledged by it (QoS 1/2). */
  delivered: [client: HookClient, message: HookMessage];
  /** A message not delivered: queue full, expired, refused by authorizeRead, dropped by a message hook. */
  dropped: [client: HookClient | undefined, message: HookMessage, reason: string];
}

export type HookEventName = keyof HookEvents;

export const HOOK_EVENT_NAMES: readonly HookEventName[] = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'publish', 'delivered', 'dropped'];

/** What the broker gets back from an authorization run. */
export interface Verdict {
  readonly allowed: boolean;
  /** 0x00 when allowed; the MQTT 5 reason code to send otherwise. */
  readonly reasonCode: number;
  readonly reason: string | undefined;
}

/** What the broker gets back from an authentication run. */
export interface AuthVerdict {
  readonly result: 'allow' | 'deny' | 'continue';
  /** 0x00 allow, 0x18 continue, else the CONNACK/DISCONNECT reason code (v5; map to v3 return codes). */
  readonly reasonCode: number;
  readonly reason: string | undefined;
  readonly authData: Buffer | undefined;
  /** Set when a hook replaced the username. */
  readonly username: string | undefined;
}
