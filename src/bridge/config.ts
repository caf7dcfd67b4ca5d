/**
 * Bridge configuration: one zod schema (camelCase in code, snake_case in
 * TOML, mapped mechanically as src/config/load.ts does) used three ways:
 * - `bridgeSchema`: one `[[bridges]]` entry of the broker config (the local
 *   side is the broker itself, so `local` is not allowed there);
 * - `bridgeFileSchema`: the standalone `tern bridge -c bridge.toml` file,
 *   which adds the `[local]` connection and `[log]`;
 * - `resolveBridgeConfig(input)`: programmatic options for createBridge().
 * Cross-field rules (filters, prefixes, the loop check) run in superRefine,
 * so every problem is reported at load with the key path it concerns.
 */
import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import { z } from 'zod';
import { logSchema } from '../config/log-schema.js';
import { lineOf, scanKeyLines } from '../config/key-lines.js';
import { camelToSnake, formatPath, isSnakeKey, snakeToCamel, type PathSegment } from '../config/keys.js';
import { ternError } from '../errors.js';
import { filtersOverlap, isValidFilter, isValidPrefix, subscribeOutputFilter } from './topics.js';

const port = z.number().int().min(1).max(65535);
const positiveInt = z.number().int().min(1);
const nonNegativeInt = z.number().int().min(0);
const qos = z.union([z.literal(0), z.literal(1), z.literal(2)]);

export const reconnectSchema = z
  .object({
    /** First retry delay, milliseconds. */
    minDelayMs: positiveInt.default(500),
    /** Cap on the retry delay, milliseconds. */
    maxDelayMs: positiveInt.default(30_000),
    /** Growth of the delay per failed attempt. */
    factor: z.number().min(1).max(100).default(2),
    /** Fraction of each delay randomised away (0..1), so bridges cut off together do not return in step. */
    jitter: z.number().min(0).max(1).default(0.5),
  })
  .strict();

export const remoteTlsSchema = z
  .object({
    /** Connect over TLS. */
    enabled: z.boolean().default(false),
    /** PEM CA bundle to trust; empty = the system trust store. */
    caFile: z.string().default(''),
    /** PEM client certificate (mutual TLS). */
    certFile: z.string().default(''),
    /** PEM private key of cert_file. */
    keyFile: z.string().default(''),
    /** PKCS#12 (.p12/.pfx) file holding the client certificate and key, instead of cert_file/key_file. */
    pfxFile: z.string().default(''),
    /** Passphrase of an encrypted key_file or of pfx_file. */
    passphrase: z.string().default(''),
    /** Name sent as SNI and checked against the server certificate; empty = host. */
    serverName: z.string().default(''),
    /** Verify the server certificate chain and host name. Turn off only for tests. */
    verify: z.boolean().default(true),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.certFile === '') !== (t.keyFile === '')) {
      ctx.addIssue({ code: 'custom', path: [t.certFile === '' ? 'certFile' : 'keyFile'], message: 'cert_file and key_file go together' });
    }
    if (t.pfxFile !== '' && t.certFile !== '') {
      ctx.addIssue({ code: 'custom', path: ['pfxFile'], message: 'give either pfx_file or cert_file/key_file, not both' });
    }
  });

export const remoteSchema = z
  .object({
    host: z.string().min(1),
    /** Default 1883, or 8883 with TLS. */
    port: port.optional(),
    /** MQTT version spoken to the remote: "3.1.1" or "5". */
    protocolVersion: z.enum(['3.1.1', '5']).default('5'),
    /** Client id at the remote; default `tern-bridge-<name>`. */
    clientId: z.string().default(''),
    username: z.string().default(''),
    password: z.string().default(''),
    /** Keep-alive, seconds: a silent link is probed and, without an answer, closed. */
    keepalive: z.number().int().min(1).max(65535).default(30),
    /** Close the link when the oldest unacknowledged PUBLISH waits this long (half-open links), milliseconds. */
    ackTimeoutMs: positiveInt.default(10_000),
    /** TCP/TLS connect + CONNACK deadline, milliseconds. */
    connectTimeoutMs: positiveInt.default(10_000),
    /**
     * Start every connection with a clean session. With false the remote keeps
     * the bridge's subscriptions across link drops (session_expiry_s for v5).
     */
    cleanSession: z.boolean().default(true),
    /** v5 session expiry interval when clean_session = false, seconds. */
    sessionExpiryS: nonNegativeInt.default(3600),
    /** QoS 1/2 messages in flight to the remote; the remote's Receive Maximum caps it further (v5). */
    inflightWindow: z.number().int().min(1).max(65535).default(100),
    /** Retained `online`/`offline` link state; empty disables. Default `tern/bridge/<name>/state`. */
    stateTopic: z.string().optional(),
    reconnect: reconnectSchema.prefault({}),
    tls: remoteTlsSchema.prefault({}),
  })
  .strict();

export const localSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: port.default(1883),
    /** "auto" tries MQTT 5 (no-local, retain-as-published) and falls back to 3.1.1. */
    protocolVersion: z.enum(['auto', '3.1.1', '5']).default('auto'),
    /** Client id at the local broker; default `tern-bridge-<name>`. Keep it stable: the session holds unacknowledged messages. */
    clientId: z.string().default(''),
    username: z.string().default(''),
    password: z.string().default(''),
    keepalive: z.number().int().min(1).max(65535).default(30),
    /** v5 session expiry at the local broker, seconds: how long it keeps messages for a stopped bridge. */
    sessionExpiryS: nonNegativeInt.default(7 * 24 * 3600),
    /** v5 Receive Maximum: unacknowledged messages the local broker may have in flight to the bridge. */
    receiveMaximum: z.number().int().min(1).max(65535).default(1000),
    reconnect: reconnectSchema.prefault({}),
  })
  .strict();

export const cacheSchema = z
  .object({
    /** Directory of the cache; the file is `<dir>/bridge-<name>.db`. */
    dir: z.string().min(1).default('./data'),
    /** Cache file path, overriding dir. */
    file: z.string().default(''),
    /** Most messages kept; 0 = no limit. */
    maxMessages: nonNegativeInt.default(1_000_000),
    /** Most bytes of topics + payloads + properties kept; 0 = no limit. */
    maxBytes: nonNegativeInt.default(512 * 1024 * 1024),
    /** Larger messages are dropped (counted as too_large). */
    maxMessageBytes: positiveInt.default(1024 * 1024),
    /** At a limit: evict the oldest messages, or refuse new ones. */
    overflow: z.enum(['drop_oldest', 'reject_new']).default('drop_oldest'),
    /**
     * What a power loss can cost. "full": nothing acknowledged (each group
     * commit is fsynced). "normal": the commits since the last WAL checkpoint;
     * a process crash loses nothing either way.
     */
    durability: z.enum(['full', 'normal']).default('full'),
    /** Cache QoS 0 messages while the remote is unreachable (else dropped and counted). */
    cacheQos0: z.boolean().default(false),
    /** Drop cached messages older than this, seconds; 0 = never (v5 message expiry still applies). */
    messageTtlS: nonNegativeInt.default(0),
    /** Rows read per replay batch, and most messages per group commit. */
    batchSize: z.number().int().min(1).max(100_000).default(1000),
    /** Pause between replay batches, milliseconds (0 = none; the window alone paces replay). */
    replayIntervalMs: nonNegativeInt.default(0),
    /** Extra wait to grow a group commit, milliseconds (0 = commit what arrived in one event-loop turn). */
    commitIntervalMs: nonNegativeInt.default(0),
  })
  .strict();

export const forwardSchema = z
  .object({
    /** Local topic filter (+ and # allowed). */
    local: z.string().min(1),
    /** Prepended to the topic at the remote. */
    remotePrefix: z.string().default(''),
    /** Subscription QoS at the local broker and most QoS at the remote. */
    qos: qos.default(1),
  })
  .strict();

export const subscribeSchema = z
  .object({
    /** Remote topic filter (+ and # allowed). */
    remote: z.string().min(1),
    /** Removed from the start of the topic before publishing locally (a literal prefix of `remote`). */
    stripPrefix: z.string().default(''),
    /** Prepended to the topic locally, after stripping. */
    localPrefix: z.string().default(''),
    qos: qos.default(1),
  })
  .strict();

const NAME = /^[A-Za-z0-9_.-]+$/;

const bridgeShape = {
  /** Names the cache file, the client ids and the state topic. */
  name: z.string().regex(NAME, 'letters, digits, _ . - only'),
  remote: remoteSchema,
  cache: cacheSchema.prefault({}),
  forward: z.array(forwardSchema).default([]),
  subscribe: z.array(subscribeSchema).default([]),
};

type BridgeShapeOut = {
  forward: Array<z.output<typeof forwardSchema>>;
  subscribe: Array<z.output<typeof subscribeSchema>>;
  remote: z.output<typeof remoteSchema>;
};

/** Cross-field rules shared by both schemas. */
function checkBridge(b: BridgeShapeOut, ctx: z.RefinementCtx): void {
  const issue = (path: PathSegment[], message: string): void => {
    ctx.addIssue({ code: 'custom', path, message });
  };
  if (b.forward.length === 0 && b.subscribe.length === 0) issue(['forward'], 'a bridge needs at least one [[forward]] or [[subscribe]] rule');
  b.forward.forEach((f, i) => {
    if (!isValidFilter(f.local)) issue(['forward', i, 'local'], `invalid topic filter "${f.local}"`);
    if (!isValidPrefix(f.remotePrefix)) issue(['forward', i, 'remotePrefix'], 'a prefix may not contain + or #');
  });
  b.subscribe.forEach((s, i) => {
    if (!isValidFilter(s.remote)) {
      issue(['subscribe', i, 'remote'], `invalid topic filter "${s.remote}"`);
      return;
    }
    if (!isValidPrefix(s.localPrefix)) issue(['subscribe', i, 'localPrefix'], 'a prefix may not contain + or #');
    const out = subscribeOutputFilter(s.remote, s.stripPrefix, s.localPrefix);
    if (out === undefined) {
      issue(['subscribe', i, 'stripPrefix'], `"${s.stripPrefix}" is not a literal prefix of "${s.remote}" leaving a filter`);
      return;
    }
    // A loop: what this rule publishes locally would be forwarded back to the remote.
    b.forward.forEach((f, j) => {
      if (filtersOverlap(out, f.local)) {
        issue(
          ['subscribe', i, 'remote'],
          `makes a loop: its local topics (${out}) are matched by forward[${j}].local "${f.local}"`,
        );
      }
    });
  });
  const st = b.remote.stateTopic;
  if (st !== undefined && st !== '' && (st.includes('+') || st.includes('#'))) {
    issue(['remote', 'stateTopic'], 'the state topic may not contain wildcards');
  }
}

/** One `[[bridges]]` entry of the broker config (the broker is the local side). */
export const bridgeSchema = z.object(bridgeShape).strict().superRefine(checkBridge);

/** The standalone `tern bridge -c FILE` file: a bridge plus its local MQTT connection. */
export const bridgeFileSchema = z
  .object({ ...bridgeShape, local: localSchema.prefault({}), log: logSchema.prefault({}) })
  .strict()
  .superRefine(checkBridge);

export type BridgeConfig = z.output<typeof bridgeSchema>;
export type BridgeConfigInput = z.input<typeof bridgeSchema>;
export type BridgeFileConfig = z.output<typeof bridgeFileSchema>;
export type BridgeFileConfigInput = z.input<typeof bridgeFileSchema>;
export type LocalConfig = z.output<typeof localSchema>;
export type RemoteConfig = z.output<typeof remoteSchema>;
export type CacheConfig = z.output<typeof cacheSchema>;

/** The remote state topic in force ('' = disabled). */
export function stateTopicOf(config: { name: string; remote: { stateTopic?: string | undefined } }): string {
  return config.remote.stateTopic ?? `tern/bridge/${config.name}/state`;
}

/** `<dir>/bridge-<name>.db` unless `file` is set. */
export function cacheFileOf(config: { name: string; cache: { dir: string; file: string } }): string {
  return config.cache.file !== '' ? config.cache.file : `${config.cache.dir.replace(/\/+$/, '')}/bridge-${config.name}.db`;
}

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** snake_case -> camelCase, recursively; non-snake keys are kept as is so zod reports them as unknown. */
function camelize(value: unknown, bad: string[], path: PathSegment[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => camelize(v, bad, [...path, i]));
  if (!isTable(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (!isSnakeKey(k)) bad.push(formatPath([...path, k]));
    out[isSnakeKey(k) ? snakeToCamel(k) : k] = camelize(v, bad, [...path, isSnakeKey(k) ? snakeToCamel(k) : k]);
  }
  return out;
}

function formatIssues(issues: readonly z.core.$ZodIssue[], toml: boolean, file?: { name: string; text: string }): string[] {
  const keyLines = file === undefined ? undefined : scanKeyLines(file.text);
  const seen = new Set<string>();
  const out: Array<{ line: number; text: string }> = [];
  for (const issue of issues) {
    const base = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    const paths = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...base, k]) : [base];
    for (const p of paths) {
      const spelled = toml ? p.map((s) => (typeof s === 'string' ? camelToSnake(s) : s)) : p;
      const message = issue.code === 'unrecognized_keys' ? 'unknown key' : issue.message;
      const text = `${formatPath(spelled) || '(root)'}: ${message}`;
      if (seen.has(text)) continue;
      seen.add(text);
      const line = keyLines === undefined ? undefined : lineOf(keyLines, spelled);
      out.push({ line: line ?? 0, text: file === undefined ? text : `${file.name}${line === undefined ? '' : `:${line}`}: ${text}` });
    }
  }
  return out.sort((a, b) => a.line - b.line).map((o) => o.text);
}

function invalid(lines: string[]): Error {
  if (lines.length === 1) return ternError('ERR_CONFIG_INVALID', lines[0]);
  return ternError('ERR_CONFIG_INVALID', `${lines.length} problems:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}

/** Validate programmatic (camelCase) options of one bridge; throws ERR_CONFIG_INVALID with every problem. */
export function resolveBridgeConfig(input: BridgeFileConfigInput): BridgeFileConfig {
  const parsed = bridgeFileSchema.safeParse(input);
  if (!parsed.success) throw invalid(formatIssues(parsed.error.issues, false));
  return parsed.data;
}

/** Parse the TOML text of a standalone bridge file; `fileName` only names it in errors. */
export function parseBridgeConfigText(text: string, fileName: string): BridgeFileConfig {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw ternError('ERR_CONFIG_PARSE', `${fileName}:${err.line}:${err.column}: ${err.message.split('\n')[0] ?? ''}`, { cause: err });
    }
    throw err;
  }
  const bad: string[] = [];
  const input = camelize(raw, bad, []);
  const parsed = bridgeFileSchema.safeParse(input);
  if (!parsed.success) throw invalid(formatIssues(parsed.error.issues, true, { name: fileName, text }));
  return parsed.data;
}

export async function loadBridgeConfigFile(path: string): Promise<BridgeFileConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ternError('ERR_CONFIG_READ', `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  return parseBridgeConfigText(text, path);
}
