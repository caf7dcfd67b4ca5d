/**
 * The one schema for Tern's configuration (P9): TOML files, CLI flags and the
 * programmatic `createBroker(options)` all end up here. Keys are camelCase in
 * code; the TOML loader maps snake_case keys onto them (max_packet_size ->
 * maxPacketSize) and maps error paths back. Every default lives here, and
 * config.example.toml documents each one.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { bridgeSchema } from '../bridge/config.js';
import { MAX_PACKET_SIZE } from '../codec/constants.js';
import { needsHashTag, REDIS_URL_PATTERN } from '../persistence/redis-url.js';
import { logSchema } from './log-schema.js';

const port = z.number().int().min(0).max(65535);
const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);

const TLS_TYPES: ReadonlySet<string> = new Set(['tls', 'wss']);

export const listenerSchema = z
  .object({
    /** Transport: `tcp`, `tls` (MQTT over TLS), `ws` (MQTT over WebSocket) or `wss` (WebSocket over TLS). */
    type: z.enum(['tcp', 'tls', 'ws', 'wss']).default('tcp'),
    /** Bind address. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port; 0 picks a free one (tests). */
    port: port.default(1883),
    /** Per-listener connection cap; 0 means only the global cap applies. */
    maxConnections: nonNegativeInt.default(0),
    /** ws/wss: HTTP path that accepts WebSocket upgrades. */
    path: z.string().startsWith('/').default('/mqtt'),
    /** tcp/tls: expect a PROXY protocol v1 or v2 header first and report the client address it carries. */
    proxyProtocol: z.boolean().default(false),
    /** tls/wss: PEM certificate chain file (required for tls/wss). */
    certFile: z.string().default(''),
    /** tls/wss: PEM private key file (required for tls/wss). */
    keyFile: z.string().default(''),
    /** tls/wss: PEM CA bundle that client certificates are verified against; empty = no client certificates. */
    caFile: z.string().default(''),
    /** tls/wss: refuse clients that present no valid certificate (needs ca_file). */
    requireCertificate: z.boolean().default(false),
    /** tls/wss: use the client certificate's `identity_field` as the username (needs require_certificate). */
    useIdentityAsUsername: z.boolean().default(false),
    /** tls/wss: certificate subject field used by use_identity_as_username (CN, O, OU, emailAddress, ...). */
    identityField: z.string().min(1).default('CN'),
    /** tls/wss: lowest TLS version accepted. */
    tlsMinVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** tls/wss: OpenSSL cipher list for TLS 1.2; empty = Node's default list. */
    ciphers: z.string().default(''),
  })
  .strict()
  .superRefine((l, ctx) => {
    const tls = TLS_TYPES.has(l.type);
    const issue = (key: string, message: string): void => {
      ctx.addIssue({ code: 'custom', path: [key], message });
    };
    if (tls && l.certFile === '') issue('certFile', `a ${l.type} listener needs cert_file`);
    if (tls && l.keyFile === '') issue('keyFile', `a ${l.type} listener needs key_file`);
    if (!tls) {
      for (const key of ['certFile', 'keyFile', 'caFile', 'ciphers'] as const) {
        if (l[key] !== '') issue(key, `only tls and wss listeners take this key`);
      }
      if (l.requireCertificate) issue('requireCertificate', 'only tls and wss listeners take this key');
      if (l.useIdentityAsUsername) issue('useIdentityAsUsername', 'only tls and wss listeners take this key');
    }
    if (l.requireCertificate && l.caFile === '') issue('caFile', 'require_certificate needs ca_file');
    if (l.useIdentityAsUsername && !l.requireCertificate) {
      issue('requireCertificate', 'use_identity_as_username needs require_certificate = true');
    }
    if (l.proxyProtocol && l.type !== 'tcp' && l.type !== 'tls') issue('proxyProtocol', 'only tcp and tls listeners take this key');
  });

export const authSchema = z
  .object({
    /**
     * Clients without a username: `true`, `false`, or `"loopback"` (the
     * default): allowed on listeners bound to a loopback address only.
     */
    allowAnonymous: z.union([z.boolean(), z.literal('loopback')]).default('loopback'),
    /** mosquitto_passwd-compatible password file; empty = no password check. Re-read on reload. */
    passwordFile: z.string().default(''),
    /** mosquitto-compatible ACL file; empty = no topic restrictions. Re-read on reload. */
    aclFile: z.string().default(''),
  })
  .strict();

/** `10.0.0.1`, `10.0.0.0/8`, `::1`, `2001:db8::/32`. */
function isAddressOrCidr(value: string): boolean {
  const [address = '', prefix, extra] = value.split('/');
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

export const bansSchema = z
  .object({
    /** Failed authentications or malformed packets from one address that trigger a ban; 0 disables bans. */
    maxFailures: nonNegativeInt.default(10),
    /** Window in which those failures must happen, milliseconds. */
    windowMs: positiveInt.default(60_000),
    /** How long a banned address is refused, milliseconds. */
    durationMs: positiveInt.default(300_000),
    /**
     * Addresses or CIDR ranges never banned. Loopback is exempt by default:
     * behind a local reverse proxy every client shares 127.0.0.1.
     */
    exempt: z.array(z.string().refine(isAddressOrCidr, 'expected an IP address or CIDR range')).default(['127.0.0.0/8', '::1']),
  })
  .strict();

export const pluginSchema = z
  .object({
    /** Module path (relative to the working directory) or package name. */
    module: z.string().min(1),
    /** Passed to the plugin's register(api, options); TOML keys arrive camelCase. */
    options: z.record(z.string(), z.unknown()).default({}),
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
    /** Topic name / filter length in characters; longer ones are refused like invalid ones. */
    maxTopicLength: z.number().int().min(1).max(65535).default(65535),
    /** Subscriptions one client may hold; more are refused (v5 SUBACK 0x97, 3.1.1 0x80). 0 = unlimited. */
    maxSubscriptionsPerClient: nonNegativeInt.default(0),
    /** Largest keep-alive a client may ask for, seconds; 0 = no cap. */
    maxKeepalive: z.number().int().min(0).max(65535).default(0),
    /** Time allowed between TCP accept and a CONNECT, milliseconds. */
    connectTimeoutMs: positiveInt.default(10_000),
    /** How long a client's socket may stay unwritable before it is closed, milliseconds. */
    drainTimeoutMs: positiveInt.default(60_000),
    /** Bytes buffered for one client's socket before delivery waits for drain. */
    socketHighWaterMark: positiveInt.default(256 * 1024),
    /**
     * PUBLISH packets per second one client may send; 0 = unlimited. A client
     * over it is slowed (its socket is not read) and may burst one second's worth.
     */
    maxPublishRate: nonNegativeInt.default(0),
    /** PUBLISH bytes per second one client may send, whole packets (fixed header included); 0 = unlimited. */
    maxPublishBytesRate: nonNegativeInt.default(0),
    /**
     * A client kept over its publish rate this long is disconnected (v5
     * DISCONNECT 0x96), milliseconds; 0 = never, only slow it down.
     */
    rateLimitDisconnectAfterMs: nonNegativeInt.default(10_000),
    /** New connections per second from one remote address; more are closed at once. 0 = unlimited. */
    maxConnectionRatePerAddress: nonNegativeInt.default(0),
    /**
     * Shutdown (SIGTERM, close()): how long the broker waits, once it stops
     * reading, for publishes already read to be stored and acknowledged and
     * for clients to close, milliseconds. Then it closes what is left.
     */
    shutdownGraceMs: nonNegativeInt.default(10_000),
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
    /**
     * How a shared group picks the member for each message: `round_robin`,
     * `random`, `sticky` (the same member while it stays connected),
     * `hash_client` (by publisher client id) or `hash_topic` (by topic).
     * Connected members are preferred by every strategy.
     */
    sharedSubscriptionStrategy: z.enum(['round_robin', 'random', 'sticky', 'hash_client', 'hash_topic']).default('round_robin'),
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
    /**
     * Response information for v5 clients that request it: a topic prefix for
     * their responses; `%c` is replaced by the client id. Empty = not offered.
     */
    responseInformation: z.string().default(''),
    /**
     * Redirect: when set, every CONNECT is refused with 0x9C Use another server
     * and this server reference (v5), or 0x03 Server unavailable (3.1.1).
     */
    serverReference: z.string().default(''),
  })
  .strict();

export const storageSchema = z
  .object({
    /** `sqlite` (durable, the default), `memory` (nothing survives a restart) or `redis` (shared by several brokers). */
    backend: z.enum(['memory', 'sqlite', 'redis']).default('sqlite'),
    /** Data directory for the sqlite backend. */
    path: z.string().min(1).default('./data'),
    /** `full`: fsync every commit group; `normal`: WAL without fsync per commit (may lose the last commits on power loss). */
    durability: z.enum(['full', 'normal']).default('normal'),
    /** Max retained messages kept; 0 = unlimited. */
    maxRetained: nonNegativeInt.default(0),
    /** Max bytes of retained payloads kept; 0 = unlimited. */
    maxRetainedBytes: nonNegativeInt.default(0),
    /**
     * Server of the redis backend: `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS), or a
     * Sentinel-managed primary: `redis+sentinel://[[user]:password@]host:port[,host:port]/<master name>[/db]`,
     * or a Redis Cluster: `redis+cluster://[[user]:password@]host:port[,host:port]` (then redis_prefix needs a
     * hash tag, e.g. `{tern}:`).
     */
    redisUrl: z.string().regex(REDIS_URL_PATTERN, 'a redis://, rediss://, redis+sentinel:// or redis+cluster:// URL').default('redis://127.0.0.1:6379'),
    /** Prefix of every key the redis backend writes; stores with different prefixes share a Redis unseen by each other. */
    redisPrefix: z.string().min(1).default('tern:'),
  })
  .strict()
  .superRefine((st, ctx) => {
    if (st.backend === 'redis' && needsHashTag(st.redisUrl, st.redisPrefix)) {
      ctx.addIssue({ code: 'custom', path: ['redisPrefix'], message: 'a Redis Cluster needs a hash tag in the prefix, e.g. "{tern}:", so every key lands in one slot' });
    }
  });

export const clusterSchema = z
  .object({
    /** Join a cluster of Tern nodes through Redis (needs storage.backend = "redis"; every node uses the same Redis and prefix). */
    enabled: z.boolean().default(false),
    /** This node's id; empty = `<hostname>-<pid>`. Give a node that must come back as itself (a StatefulSet pod) a fixed id. */
    nodeId: z.string().regex(/^[A-Za-z0-9._:-]*$/, 'letters, digits and . _ : - only').default(''),
    /** How often a node renews its heartbeat and checks the others, milliseconds. */
    heartbeatIntervalMs: positiveInt.default(1000),
    /** A node whose heartbeat is this old is dead: another node adopts its sessions, milliseconds. */
    nodeTimeoutMs: positiveInt.default(5000),
    /** Longest wait for the node holding a session to let go of it when its client connects elsewhere, milliseconds. */
    takeoverTimeoutMs: positiveInt.default(3000),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.nodeTimeoutMs <= c.heartbeatIntervalMs * 2) {
      ctx.addIssue({ code: 'custom', path: ['nodeTimeoutMs'], message: 'node_timeout_ms must be more than twice heartbeat_interval_ms' });
    }
  });

export { logSchema } from './log-schema.js';

export const httpSchema = z
  .object({
    /** Serve health checks, /metrics, the admin API and the dashboard over HTTP. */
    enabled: z.boolean().default(false),
    /** Bind address; a non-loopback address requires `token`, `tokenFile` or `username`/`password`. */
    host: z.string().min(1).default('127.0.0.1'),
    /** Port; 0 picks a free one (tests). */
    port: port.default(8080),
    /** PEM certificate file; with `tlsKey`, serve HTTPS. Empty: plain HTTP. */
    tlsCert: z.string().default(''),
    /** PEM private key file for `tlsCert`. */
    tlsKey: z.string().default(''),
    /** Bearer token required on every path but /healthz and /readyz; empty: no token. */
    token: z.string().default(''),
    /**
     * File holding the bearer token instead of `token` (a mounted secret), read
     * when the HTTP listener starts; surrounding whitespace is ignored. Empty: none.
     */
    tokenFile: z.string().default(''),
    /** Basic-auth user name (with `password`); empty: no basic auth. */
    username: z.string().default(''),
    /** Basic-auth password. */
    password: z.string().default(''),
    /** Serve the web dashboard at `/`. */
    dashboard: z.boolean().default(true),
    /** Largest request body accepted by the admin API, in bytes. */
    maxBodyBytes: positiveInt.default(1024 * 1024),
    /** Live message streams (SSE, /api/v1/stream) open at once. */
    maxStreams: positiveInt.default(16),
  })
  .strict()
  .superRefine((h, ctx) => {
    if (h.token !== '' && h.tokenFile !== '') {
      ctx.addIssue({ code: 'custom', path: ['tokenFile'], message: 'set http.token or http.token_file, not both' });
    }
  });

export const sysSchema = z
  .object({
    /** Seconds between $SYS/broker/... updates (Mosquitto's sys_interval); 0 disables $SYS. */
    interval: z.number().min(0).max(86_400).default(10),
  })
  .strict();

const topicFilters = z.array(z.string().min(1)).default(['#']);

export const fileLogSchema = z
  .object({
    /** Write matching messages as NDJSON lines to `path`. */
    enabled: z.boolean().default(false),
    /** Topic filters whose messages are logged. */
    filters: topicFilters,
    /** The current log file; rotated files get `.1`, `.2`, ... (newest first). */
    path: z.string().min(1).default('./messages.ndjson'),
    /** Rotate when the file would grow past this many bytes. */
    maxBytes: positiveInt.default(10 * 1024 * 1024),
    /** Rotated files kept. */
    maxFiles: positiveInt.default(5),
    /** Lines waiting for the disk before new ones are dropped (and counted). */
    maxBuffer: positiveInt.default(10_000),
  })
  .strict();

export const bigqueryLogSchema = z
  .object({
    /** Stream matching messages into a BigQuery table (tabledata.insertAll). */
    enabled: z.boolean().default(false),
    /** Topic filters whose messages are logged. */
    filters: topicFilters,
    /** Google Cloud project; empty: the credentials' project. */
    projectId: z.string().default(''),
    /** Dataset id. */
    dataset: z.string().default('tern'),
    /** Table id (schema in docs/operations.md). */
    table: z.string().default('messages'),
    /** Service-account key file; empty: application default credentials. */
    keyFilename: z.string().default(''),
    /** API endpoint override (e.g. an emulator); empty: Google's. */
    apiEndpoint: z.string().default(''),
    /** Rows per insert request. */
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /** Longest a row waits before its batch is sent, milliseconds. */
    flushIntervalMs: positiveInt.default(1000),
    /** Rows buffered (waiting or being retried) before new ones are dropped and counted. */
    maxBuffer: positiveInt.default(50_000),
    /** Retries of a failed insert before its rows are dropped and counted. */
    maxRetries: nonNegativeInt.default(5),
    /** First retry delay, milliseconds; doubles on each retry (with jitter). */
    retryBaseMs: positiveInt.default(500),
  })
  .strict();

export const messageLogSchema = z
  .object({
    file: fileLogSchema.prefault({}),
    bigquery: bigqueryLogSchema.prefault({}),
  })
  .strict();

export const configSchema = z
  .object({
    /** Listeners; when none are given, one TCP listener on 127.0.0.1:1883. */
    listeners: z.array(listenerSchema).default(() => [listenerSchema.parse({})]),
    limits: limitsSchema.prefault({}),
    mqtt: mqttSchema.prefault({}),
    storage: storageSchema.prefault({}),
    cluster: clusterSchema.prefault({}),
    log: logSchema.prefault({}),
    auth: authSchema.prefault({}),
    bans: bansSchema.prefault({}),
    /**
     * Plugins by instance name, loaded in file order: `[plugins.NAME]` with
     * `module` and an `options` table. Their hooks run before the built-in
     * password file and ACL.
     */
    plugins: z.record(z.string(), pluginSchema).default({}),
    http: httpSchema.prefault({}),
    sys: sysSchema.prefault({}),
    messageLog: messageLogSchema.prefault({}),
    /**
     * Bridges run inside this broker (`[[bridges]]`, the same keys as a
     * `tern bridge` file's bridge): the local side is the broker itself.
     */
    bridges: z.array(bridgeSchema).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.cluster.enabled && c.storage.backend !== 'redis') {
      ctx.addIssue({ code: 'custom', path: ['cluster', 'enabled'], message: 'a cluster needs storage.backend = "redis" (the nodes share it)' });
    }
  });

/** The fully defaulted configuration the broker runs on. */
export type TernConfig = z.output<typeof configSchema>;
/** What a user may write (every field optional). */
export type TernConfigInput = z.input<typeof configSchema>;
export type ListenerConfig = z.output<typeof listenerSchema>;
export type LimitsConfig = z.output<typeof limitsSchema>;
export type MqttConfig = z.output<typeof mqttSchema>;
export type StorageConfig = z.output<typeof storageSchema>;
export type ClusterConfig = z.output<typeof clusterSchema>;
export type LogConfig = z.output<typeof logSchema>;
export type AuthConfig = z.output<typeof authSchema>;
export type BansConfig = z.output<typeof bansSchema>;
export type PluginConfig = z.output<typeof pluginSchema>;
export type HttpConfig = z.output<typeof httpSchema>;
export type SysConfig = z.output<typeof sysSchema>;
export type MessageLogConfig = z.output<typeof messageLogSchema>;
export type FileLogConfig = z.output<typeof fileLogSchema>;
export type BigqueryLogConfig = z.output<typeof bigqueryLogSchema>;
