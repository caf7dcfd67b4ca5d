/** `npm run bench -- [options]`: the command line of bench/run.ts. */
import { parseArgs } from 'node:util';
import { BROKERS, type BrokerName } from './brokers.js';
import { ALIASES, MICRO, SCENARIOS, type MicroName, type ScenarioDef } from './scenarios.js';

export const USAGE = `Usage: npm run bench -- [options]

Without --compare: the micro-benchmarks (codec, trie) and every end-to-end
scenario against Tern. With --compare: the end-to-end scenarios against Tern,
Mosquitto and Aedes, interleaved, with medians and ratios to Mosquitto.

Options
  --compare              Tern, Mosquitto and Aedes (default: Tern only)
  --only <list>          scenarios, groups or micro-benchmarks, comma-separated:
                           ${SCENARIOS.map((s) => s.id).join(', ')}
                           groups: ${[...new Set(SCENARIOS.map((s) => s.group))].join(', ')}, ${Object.keys(ALIASES).join(', ')}
                           micro: ${MICRO.join(', ')}
  --qos <list>           keep only scenarios of these QoS levels (e.g. 0,1)
  --brokers <list>       subset of ${BROKERS.join(',')} (with --compare)
  --mqtt <4|5>           protocol level of every client (default 4: Aedes speaks only 3.1.1;
                         with 5, Aedes is left out)
  --nodelay              TCP_NODELAY on Mosquitto (set_tcp_nodelay true) and Aedes as well
                         (Tern always sets it; their defaults leave Nagle on)
  --duration <s>         seconds of load per run (default 10)
  --reps <n>             repetitions (default 3 with --compare, else 1)
  --idle-conns <n>       connections of the idle scenario (default 10000)
  --retained <n>         retained messages of the storm (default 10000)
  --profile <scenario>   also run Tern once under that scenario with --cpu-prof and summarise it
  --profile-dir <dir>    where the .cpuprofile goes (default: a temp directory)
  --smoke                1 s per run, Tern only, small sizes, no results file (for a quick check)
  --out <file>           results file (default bench/results/<date>-<sha>.json)
  --no-save              do not write a results file
  --list                 list the scenarios and exit
  --help                 this text
`;

export interface RunOptions {
  compare: boolean;
  smoke: boolean;
  brokers: BrokerName[];
  scenarios: ScenarioDef[];
  micro: MicroName[];
  version: 4 | 5;
  noDelay: boolean;
  durationS: number;
  reps: number;
  idleConns: number;
  retained: number;
  profile: ScenarioDef | null;
  profileDir: string | null;
  /** null = do not save. */
  out: string | null | 'default';
}

/** What --smoke runs when --only does not say. */
const SMOKE_SET = ['pairs-q0', 'pairs-q1', 'fanout-q0', 'fanin-q0', 'latency', 'idle', 'retained', 'persistent'];

function list(raw: string | undefined): string[] | null {
  return raw === undefined ? null : raw.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
}

function int(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${raw}'`);
  return n;
}

/** Returns null for --help / --list (after printing). Throws Error on bad input. */
export function parseRunArgs(argv: readonly string[], print: (text: string) => void): RunOptions | null {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      compare: { type: 'boolean' },
      only: { type: 'string' },
      qos: { type: 'string' },
      brokers: { type: 'string' },
      mqtt: { type: 'string' },
      nodelay: { type: 'boolean' },
      duration: { type: 'string' },
      reps: { type: 'string' },
      'idle-conns': { type: 'string' },
      retained: { type: 'string' },
      profile: { type: 'string' },
      'profile-dir': { type: 'string' },
      smoke: { type: 'boolean' },
      out: { type: 'string' },
      'no-save': { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    print(USAGE);
    return null;
  }
  if (values.list === true) {
    print(`${SCENARIOS.map((s) => `${s.id.padEnd(15)} ${s.brokers.join(',').padEnd(22)} ${s.title}`).join('\n')}\nmicro: ${MICRO.join(', ')}\n`);
    return null;
  }
  const smoke = values.smoke === true;
  const compare = values.compare === true && !smoke;

  let only = list(values.only);
  if (only === null && smoke) only = [...SMOKE_SET, 'codec', 'trie'];
  let scenarios: ScenarioDef[];
  let micro: MicroName[];
  if (only === null) {
    scenarios = [...SCENARIOS];
    micro = compare ? [] : ['codec', 'trie'];
  } else {
    const ids = new Set<string>();
    micro = [];
    for (const name of only) {
      if ((MICRO as readonly string[]).includes(name)) {
        micro.push(name as MicroName);
        continue;
      }
      const alias = ALIASES[name];
      const matched = alias ?? SCENARIOS.filter((s) => s.id === name || s.group === name).map((s) => s.id);
      if (matched.length === 0) throw new Error(`unknown scenario '${name}' (see --list)`);
      for (const id of matched) ids.add(id);
    }
    scenarios = SCENARIOS.filter((s) => ids.has(s.id));
  }
  const qos = list(values.qos)?.map(Number);
  if (qos !== undefined) scenarios = scenarios.filter((s) => s.qos === null || qos.includes(s.qos));

  let brokers: BrokerName[] = compare ? [...BROKERS] : ['tern'];
  const wanted = list(values.brokers);
  if (wanted !== null && compare) {
    for (const b of wanted) if (!(BROKERS as readonly string[]).includes(b)) throw new Error(`unknown broker '${b}'`);
    brokers = BROKERS.filter((b) => wanted.includes(b));
  }

  const version = int('mqtt', values.mqtt, 4, 4);
  if (version !== 4 && version !== 5) throw new Error(`--mqtt must be 4 or 5, got '${values.mqtt!}'`);
  // Aedes implements MQTT 3.1.1 only.
  if (version === 5) brokers = brokers.filter((b) => b !== 'aedes');

  let profile: ScenarioDef | null = null;
  if (values.profile !== undefined) {
    profile = SCENARIOS.find((s) => s.id === values.profile) ?? null;
    if (profile === null) throw new Error(`--profile: unknown scenario '${values.profile}'`);
  }

  return {
    compare,
    smoke,
    brokers,
    scenarios,
    micro,
    version,
    noDelay: values.nodelay === true,
    durationS: smoke ? 1 : int('duration', values.duration, 10, 1),
    reps: smoke ? 1 : int('reps', values.reps, compare ? 3 : 1, 1),
    idleConns: int('idle-conns', values['idle-conns'], smoke ? 200 : 10_000, 1),
    retained: int('retained', values.retained, smoke ? 500 : 10_000, 1),
    profile,
    profileDir: values['profile-dir'] ?? null,
    out: values['no-save'] === true ? null : (values.out ?? (smoke ? null : 'default')),
  };
}
