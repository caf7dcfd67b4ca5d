/**
 * The one schema for Tern's configuration (P9): TOML files, CLI flags and the
 * programmatic `createBroker(options)` all end up here. Keys are camelCase in
 * code; the TOML loader maps snake_case keys onto them (max_packet_size ->
 * maxPacketSize) and maps error paths back. Every default lives here, and
 * config.example.toml documents each one.
 */
import { z } from 'zod';
import { MAX_PACKET_SIZE } from '../codec/constants.js';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);

export const listenerSchema = z
  .object({
    /** Transport. Only `tcp` until the listeners issue adds tls/ws/wss. */
    type: z.enum(['tcp']).default('tcp'),
    /** Bind address. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port; 0 picks a free one (tests). */
    port: port.default(1883),
    /** Per-listener connection cap; 0 means only the global cap applies. */
    maxConnections: nonNegativeInt.default(0),
  })
  .strict();

export const limitsSchema = z
  .object({
    /**
     * Largest packet accepted from a client, in bytes (fixed header included).
     * 1 MiB by default (as EMQX): the protocol allows 256 MiB, and every
     * connection may buffer up to this much. Up to 268435460.
     */
    maxPacketSize: z.number().int().min(16).max(MAX_PACKET_SIZE).default(1024 * 1024),
    /** Simultaneous client connections across all listeners; 0 = unlimited. */
    maxConnections: nonNegativeInt.default(0),
    /** Outbound QoS 1/2 messages unacknowledged per client (like mosquitto max_inflight_messages). */
    maxInflight: z.number().int().min(1).max(65535).default(20),
    /** Messages queued per client beyond the in-flight window, offline or slow; oldest dropped. */
    maxQueued: nonNegativeInt.default(1000),
    /** Topic name / filter levels; deeper topics are refused (guards the trie's recursion). */
    maxTopicLevels: positiveInt.default(128),
    /** Largest keep-alive a client may ask for, seconds; 0 = no cap. */
    maxKeepalive: z.number().int().min(0).max(65535).default(0),
    /** Time allowed between TCP accept and a CONNECT, milliseconds. */
    connectTimeoutMs: positiveInt.default(10_000),
    /** How long a client's socket may stay unwritable before it is closed, milliseconds. */
    drainTimeoutMs: positiveInt.default(60_000),
    /** Bytes buffered for one client's socket before delivery waits for drain. */
    socketHighWaterMark: positiveInt.default(256 * 1024),
  })
  .strict();

export const mqttSchema = z
  .object({
    /** Accept an empty client id (with clean session) and assign one. */
    allowZeroLengthClientId: z.boolean().default(true),
    /** Prefix for generated client ids. */
    autoIdPrefix: z.string().default('tern-'),
    /** Highest QoS the broker grants. */
    maxQos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(2),
    /** Whether retained messages are supported. */
    retainAvailable: z.boolean().default(true),
    /** Whether wildcard subscriptions are allowed. */
    wildcardSubscriptions: z.boolean().default(true),
    /** Whether $share/ subscriptions are allowed. */
    sharedSubscriptions: z.boolean().default(true),
    /** Whether v5 subscription identifiers are supported. */
    subscriptionIdentifiers: z.boolean().default(true),
    /** Max session expiry a v5 client may ask for, seconds (0xFFFFFFFF = never expires). */
    maxSessionExpiry: z.number().int().min(0).max(0xffffffff).default(0xffffffff),
    /** Session expiry applied to MQTT 3.1.1 persistent sessions (clean session 0), seconds. */
    persistentSessionExpiry: z.number().int().min(0).max(0xffffffff).default(0xffffffff),
    /** Max outbound topic aliases the broker accepts from a v5 client. */
    topicAliasMaximum: z.number().int().min(0).max(65535).default(65535),
    /** Receive maximum the broker announces to v5 clients (inbound QoS 1/2 in flight). */
    receiveMaximum: z.number().int().min(1).max(65535).default(65535),
  })
  .strict();

export const storageSchema = z
  .object({
    /** `sqlite` (durable, the default) or `memory` (nothing survives a restart). */
    backend: z.enum(['memory', 'sqlite']).default('sqlite'),
    /** Data directory for the sqlite backend. */
    path: z.string().min(1).default('./data'),
    /** `full`: fsync every commit group; `normal`: WAL without fsync per commit (may lose the last commits on power loss). */
    durability: z.enum(['full', 'normal']).default('normal'),
    /** Max retained messages kept; 0 = unlimited. */
    maxRetained: nonNegativeInt.default(0),
    /** Max bytes of retained payloads kept; 0 = unlimited. */
    maxRetainedBytes: nonNegativeInt.default(0),
  })
  .strict();

export const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** `json` lines, `pretty` for a terminal, or `auto` (pretty when stdout is a TTY). */
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict();

export const configSchema = z
  .object({
    /** Listeners; when none are given, one TCP listener on 127.0.0.1:1883. */
    listeners: z.array(listenerSchema).default([{ type: 'tcp', host: '127.0.0.1', port: 1883, maxConnections: 0 }]),
    limits: limitsSchema.prefault({}),
    mqtt: mqttSchema.prefault({}),
    storage: storageSchema.prefault({}),
    log: logSchema.prefault({}),
  })
  .strict();

/** The fully defaulted configuration the broker runs on. */
export type TernConfig = z.output<typeof configSchema>;
/** What a user may write (every field optional). */
export type TernConfigInput = z.input<typeof configSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type MqttConfig = z.output<typeof mqttSchema>;
export type StorageConfig = z.output<typeof storageSchema>;
export type LogConfig = z.output<typeof logSchema>;
