/**
 * The one registry of Tern's coded errors. Every error Tern throws on purpose
 * is a TernError with a stable `code`; protocol errors also carry the MQTT 5
 * reason code that the connection layer turns into CONNACK/DISCONNECT.
 * docs/errors.md lists every code (kept in sync by test/errors.test.ts).
 */
import { ReasonCode } from './codec/constants.js';

export class TernError extends Error {
  readonly code: string;
  /** MQTT 5 reason code to report to the peer, when the error is about a packet. */
  readonly reasonCode: number | undefined;

  constructor(code: string, message: string, reasonCode?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TernError';
    this.code = code;
    this.reasonCode = reasonCode;
  }
}

interface ErrorSpec {
  readonly message: string;
  readonly reasonCode?: number;
}

/** code -> default message and reason code. */
export const ERRORS = {
  // Codec / protocol (reason codes per MQTT 5.0 §2.4)
  ERR_MQTT_MALFORMED: { message: 'malformed packet', reasonCode: ReasonCode.MALFORMED_PACKET },
  ERR_MQTT_PROTOCOL: { message: 'protocol error', reasonCode: ReasonCode.PROTOCOL_ERROR },
  ERR_MQTT_PACKET_TOO_LARGE: { message: 'packet too large', reasonCode: ReasonCode.PACKET_TOO_LARGE },
  ERR_MQTT_UNSUPPORTED_PROTOCOL: {
    message: 'unsupported protocol name or level',
    reasonCode: ReasonCode.UNSUPPORTED_PROTOCOL_VERSION,
  },
  ERR_MQTT_TOPIC_NAME_INVALID: { message: 'invalid topic name', reasonCode: ReasonCode.TOPIC_NAME_INVALID },
  ERR_MQTT_TOPIC_ALIAS_INVALID: { message: 'invalid topic alias', reasonCode: ReasonCode.TOPIC_ALIAS_INVALID },
  ERR_MQTT_RECEIVE_MAXIMUM_EXCEEDED: {
    message: 'receive maximum exceeded',
    reasonCode: ReasonCode.RECEIVE_MAXIMUM_EXCEEDED,
  },
  ERR_MQTT_PAYLOAD_FORMAT_INVALID: { message: 'payload is not valid UTF-8', reasonCode: ReasonCode.PAYLOAD_FORMAT_INVALID },
  ERR_MQTT_QOS_NOT_SUPPORTED: { message: 'QoS not supported', reasonCode: ReasonCode.QOS_NOT_SUPPORTED },
  ERR_MQTT_RETAIN_NOT_SUPPORTED: { message: 'retain not supported', reasonCode: ReasonCode.RETAIN_NOT_SUPPORTED },
  ERR_MQTT_KEEPALIVE_TIMEOUT: { message: 'keep-alive timeout', reasonCode: ReasonCode.KEEP_ALIVE_TIMEOUT },
  ERR_MQTT_CONNECT_TIMEOUT: { message: 'no CONNECT within the connect timeout', reasonCode: ReasonCode.MAXIMUM_CONNECT_TIME },
  ERR_MQTT_QUOTA_EXCEEDED: { message: 'quota exceeded', reasonCode: ReasonCode.QUOTA_EXCEEDED },
  ERR_MQTT_MESSAGE_RATE_TOO_HIGH: { message: 'message rate too high', reasonCode: ReasonCode.MESSAGE_RATE_TOO_HIGH },
  ERR_MQTT_NOT_AUTHORIZED: { message: 'not authorized', reasonCode: ReasonCode.NOT_AUTHORIZED },
  // Codec misuse: a packet object that cannot be put on the wire (a bug in the caller, not the peer)
  ERR_CODEC_INVALID_PACKET: { message: 'cannot encode packet' },
  // Connection / transport
  ERR_CONN_SLOW_CONSUMER: { message: 'client did not drain its socket in time' },
  ERR_CONN_SOCKET: { message: 'socket error' },
  // Configuration
  ERR_CONFIG_INVALID: { message: 'invalid configuration' },
  ERR_CONFIG_READ: { message: 'cannot read configuration file' },
  ERR_CONFIG_PARSE: { message: 'configuration file is not valid TOML' },
  // Broker lifecycle
  ERR_BROKER_CLOSED: { message: 'broker is closed' },
  ERR_BROKER_NOT_LISTENING: { message: 'broker is not listening' },
  ERR_BROKER_STARTED: { message: 'broker was already started' },
  ERR_LISTEN: { message: 'cannot bind listener' },
  // Storage
  ERR_STORAGE_OPEN: { message: 'cannot open storage' },
  ERR_STORAGE_LOCKED: { message: 'storage is in use by another process' },
  ERR_STORAGE_CORRUPT: { message: 'storage file is corrupt or unreadable' },
  ERR_STORAGE_WRITE: { message: 'storage write failed', reasonCode: ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR },
  ERR_STORAGE_CLOSED: { message: 'storage is not open' },
  ERR_STORAGE_INVALID_OP: { message: 'invalid storage operation', reasonCode: ReasonCode.IMPLEMENTATION_SPECIFIC_ERROR },
  ERR_STORAGE_RETAINED_LIMIT: { message: 'retained message limit reached', reasonCode: ReasonCode.QUOTA_EXCEEDED },
  // Auth
  ERR_AUTH_PASSWORD_FILE: { message: 'invalid password file' },
  ERR_AUTH_ACL_FILE: { message: 'invalid ACL file' },
  // Listeners (src/transport)
  ERR_TLS_FILE: { message: 'cannot load TLS certificate, key or CA' },
  ERR_PROXY_PROTOCOL: { message: 'invalid PROXY protocol header' },
  // Hooks and plugins (src/hooks)
  ERR_HOOK_UNKNOWN: { message: 'unknown hook or event name' },
  ERR_HOOK_INVALID: { message: 'a hook must be a function' },
  ERR_PLUGIN_LOAD: { message: 'cannot load plugin' },
  ERR_PLUGIN_INVALID: { message: 'not a Tern plugin' },
  ERR_PLUGIN_API_VERSION: { message: 'unsupported plugin API version' },
  // CLI
  ERR_CLI_USAGE: { message: 'invalid command line' },
  // Client (src/client: bridge and bench)
  ERR_CLIENT_OPTIONS: { message: 'invalid client options' },
  ERR_CLIENT_CONNECT_REFUSED: { message: 'connection refused by the server' },
  ERR_CLIENT_CONNECT_TIMEOUT: { message: 'no CONNACK within the connect timeout' },
  ERR_CLIENT_CONNECTION_LOST: { message: 'connection lost' },
  ERR_CLIENT_CLOSED: { message: 'client is closed' },
  ERR_CLIENT_ACK_TIMEOUT: { message: 'no acknowledgement within the ack timeout' },
  ERR_CLIENT_REJECTED: { message: 'request rejected by the server' },
  // Cluster
  ERR_CLUSTER_REDIS: { message: 'cannot reach the cluster Redis' },
  ERR_CLUSTER_IDS_EXHAUSTED: { message: 'cluster message id block used up before the next one arrived' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Build a TernError from the registry; `detail` is appended to the default message. */
export function ternError(code: ErrorCode, detail?: string, options?: { cause?: unknown }): TernError {
  const spec: ErrorSpec = ERRORS[code];
  const message = detail ? `${spec.message}: ${detail}` : spec.message;
  return new TernError(code, message, spec.reasonCode, options);
}

export function isTernError(err: unknown, code?: ErrorCode): err is TernError {
  return err instanceof TernError && (code === undefined || err.code === code);
}
