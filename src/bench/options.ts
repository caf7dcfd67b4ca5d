/**
 * `tern bench` command line -> validated BenchOptions. Flags follow
 * emqtt-bench where it has one (-h host, -p port, -c clients, -q qos,
 * -s size, -t topic, -V version).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MAX_VARINT } from '../codec/constants.js';
import type { QoS } from '../codec/types.js';
import { ternError } from '../errors.js';
import { STAMP_BYTES } from './stamp.js';

export const SCENARIOS = ['conn', 'pub', 'sub', 'pairs', 'fanout', 'fanin', 'latency'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  scenario: Scenario;
  host: string;
  port: number;
  tls: boolean;
  ca: Buffer | undefined;
  insecure: boolean;
  clients: number;
  qos: QoS;
  size: number;
  /** Messages/s per publisher; 0 = as fast as the window allows. */
  rate: number;
  durationS: number;
  /** Topic pattern; `%i` is the 1-based client index. */
  topic: string;
  version: 4 | 5;
  /** Unacknowledged QoS 1/2 messages per publisher (rate 0 and rated alike). */
  inflight: number;
  /** Connects in progress at once. */
  concurrency: number;
  keepalive: number;
  username: string | undefined;
  password: string | undefined;
  json: boolean;
  quiet: boolean;
}

export const USAGE = `Usage: tern bench <conn|pub|sub|pairs|fanout|fanin|latency> [options]

Scenarios
  conn     connect -c clients as fast as possible and hold them for --duration
  pub      -c publishers on --topic (default tern/bench/%i)
  sub      -c subscribers on --topic, counting receipt (latency if the payloads are stamped)
  pairs    -c publisher/subscriber pairs on distinct topics
  fanout   1 publisher, -c subscribers on one topic (deliveries/s)
  fanin    -c publishers, 1 subscriber on the wildcard (%i -> +)
  latency  -c (default 1) pairs at a fixed --rate (default 100), end-to-end p50/p90/p99/max

Options
  -h, --host <host>        broker host (default 127.0.0.1)
  -p, --port <port>        broker port (default 1883, 8883 with --tls)
      --tls                connect over TLS
      --ca <file>          CA certificate (PEM) for --tls
      --insecure           do not verify the server certificate
  -c, --clients <n>        clients / publishers / subscribers / pairs (default 10)
  -q, --qos <0|1|2>        QoS of publishes and subscriptions (default 0)
  -s, --size <bytes>       payload size (default 64; >= ${STAMP_BYTES} carries a latency stamp)
  -r, --rate <n>           messages/s per publisher, 0 = as fast as possible (default 0)
  -d, --duration <s>       seconds to publish (or hold, for conn) (default 10)
  -t, --topic <pattern>    topic pattern, %i = client index (1-based)
  -V, --version <4|5>      MQTT protocol level (default 5)
  -w, --inflight <n>       unacknowledged QoS 1/2 messages per publisher (default 64)
      --concurrency <n>    connects in progress at once (default 100)
  -k, --keepalive <s>      keep-alive seconds (default 60)
  -u, --username <name>
  -P, --password <pass>
      --json               print one JSON result object on stdout
      --quiet              no progress line on stderr
      --help               this text
`;

const DEFAULT_TOPICS: Record<Scenario, string> = {
  conn: 'tern/bench/conn/%i',
  pub: 'tern/bench/%i',
  sub: 'tern/bench/%i',
  pairs: 'tern/bench/pairs/%i',
  fanout: 'tern/bench/fanout',
  fanin: 'tern/bench/fanin/%i',
  latency: 'tern/bench/latency/%i',
};

function usage(detail: string): Error {
  return ternError('ERR_CLI_USAGE', detail);
}

function intArg(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw usage(`--${name} must be an integer in ${min}..${max}, got '${raw}'`);
  return n;
}

function numArg(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) throw usage(`--${name} must be a number in ${min}..${max}, got '${raw}'`);
  return n;
}

/** Returns null when --help was asked for. Throws ERR_CLI_USAGE on bad input. */
export function parseBenchArgs(argv: readonly string[]): BenchOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string', short: 'h' },
        port: { type: 'string', short: 'p' },
        tls: { type: 'boolean' },
        ca: { type: 'string' },
        insecure: { type: 'boolean' },
        clients: { type: 'string', short: 'c' },
        qos: { type: 'string', short: 'q' },
        size: { type: 'string', short: 's' },
        rate: { type: 'string', short: 'r' },
        duration: { type: 'string', short: 'd' },
        topic: { type: 'string', short: 't' },
        version: { type: 'string', short: 'V' },
        inflight: { type: 'string', short: 'w' },
        concurrency: { type: 'string' },
        keepalive: { type: 'string', short: 'k' },
        username: { type: 'string', short: 'u' },
        password: { type: 'string', short: 'P' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    });
  } catch (err) {
    throw usage((err as Error).message);
  }
  const v = parsed.values;
  if (v.help === true) return null;
  if (parsed.positionals.length !== 1) throw usage(`expected one scenario (${SCENARIOS.join('|')})`);
  const scenario = parsed.positionals[0] as Scenario;
  if (!SCENARIOS.includes(scenario)) throw usage(`unknown scenario '${parsed.positionals[0]!}' (${SCENARIOS.join('|')})`);
  const latency = scenario === 'latency';
  const tls = v.tls === true;
  const version = intArg('version', v.version, 5, 4, 5) as 4 | 5;
  const size = intArg('size', v.size, 64, 0, MAX_VARINT - 1024);
  if (latency && size < STAMP_BYTES) throw usage(`latency needs --size >= ${STAMP_BYTES} for the timestamp`);
  let ca: Buffer | undefined;
  if (v.ca !== undefined) {
    try {
      ca = readFileSync(v.ca);
    } catch (err) {
      throw usage(`cannot read --ca ${v.ca}: ${(err as Error).message}`);
    }
  }
  const topic = v.topic ?? DEFAULT_TOPICS[scenario];
  if (topic.length === 0 || topic.includes('#') || topic.includes('+')) throw usage('--topic must be a topic name pattern without wildcards');
  return {
    scenario,
    host: v.host ?? '127.0.0.1',
    port: intArg('port', v.port, tls ? 8883 : 1883, 1, 65535),
    tls: tls || v.ca !== undefined,
    ca,
    insecure: v.insecure === true,
    clients: intArg('clients', v.clients, latency ? 1 : 10, 1, 1_000_000),
    qos: intArg('qos', v.qos, 0, 0, 2) as QoS,
    size,
    rate: numArg('rate', v.rate, latency ? 100 : 0, 0, 10_000_000),
    durationS: numArg('duration', v.duration, 10, 0.1, 31_536_000),
    topic,
    version,
    inflight: intArg('inflight', v.inflight, 64, 1, 65535),
    concurrency: intArg('concurrency', v.concurrency, 100, 1, 100_000),
    keepalive: intArg('keepalive', v.keepalive, 60, 0, 65535),
    username: v.username,
    password: v.password,
    json: v.json === true,
    quiet: v.quiet === true,
  };
}

/** Expand `%i` in a topic pattern. */
export function topicFor(pattern: string, index: number): string {
  return pattern.replaceAll('%i', String(index));
}
