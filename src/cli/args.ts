/**
 * Command-line parsing for `tern` (node:util parseArgs). Turns argv into one
 * typed command; anything it does not understand is ERR_CLI_USAGE, which the
 * entry point prints with the usage text and exit code 2.
 */
import { parseArgs } from 'node:util';
import { logSchema } from '../config/schema.js';
import { ternError } from '../errors.js';

export const USAGE = `Usage:
  tern [broker] [-c FILE] [-p PORT] [-l ADDRESS] [--log-level LEVEL] [--repair]
  tern check-config -c FILE
  tern passwd ...
  tern bench <conn|pub|sub|pairs|fanout|fanin|latency> [options]
  tern bridge -c FILE
  tern --help | --version

Commands:
  broker         Run the MQTT broker (the default command)
  check-config   Validate a configuration file and exit (0 = ok, 1 = invalid)
  passwd         Manage a password file (tern passwd --help)
  bench          Load generator (tern bench --help)
  bridge         Store-and-forward bridge between two brokers (tern bridge --help)

Broker options:
  -c, --config FILE      TOML configuration file (default: built-in defaults)
  -p, --port PORT        Port of the first listener (0 picks a free port)
  -l, --listen ADDRESS   Bind address of the first listener
      --log-level LEVEL  trace, debug, info, warn, error, fatal or silent
      --repair           Move a corrupt storage file aside (never deleted) and start fresh
  -h, --help             Show this help
  -v, --version          Print the version
`;

export type CliCommand =
  | {
      readonly kind: 'broker';
      readonly configFile: string | undefined;
      readonly port: number | undefined;
      readonly host: string | undefined;
      readonly logLevel: string | undefined;
      readonly repair: boolean;
    }
  | { readonly kind: 'check-config'; readonly configFile: string }
  | { readonly kind: 'passwd'; readonly argv: readonly string[] }
  | { readonly kind: 'bench'; readonly argv: readonly string[] }
  | { readonly kind: 'bridge'; readonly argv: readonly string[] }
  | { readonly kind: 'help' }
  | { readonly kind: 'version' };

const COMMON = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

const BROKER_OPTIONS = {
  ...COMMON,
  config: { type: 'string', short: 'c' },
  port: { type: 'string', short: 'p' },
  listen: { type: 'string', short: 'l' },
  'log-level': { type: 'string' },
  repair: { type: 'boolean' },
} as const;

const CHECK_OPTIONS = {
  ...COMMON,
  config: { type: 'string', short: 'c' },
} as const;

const COMMANDS = new Set(['broker', 'check-config', 'passwd', 'bench', 'bridge', 'help']);

/** parseArgs reports unknown flags as TypeError with an ERR_PARSE_ARGS_* code. */
function asUsageError<T>(run: () => T): T {
  try {
    return run();
  } catch (err) {
    if (err instanceof Error && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')) {
      throw ternError('ERR_CLI_USAGE', err.message);
    }
    throw err;
  }
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw ternError('ERR_CLI_USAGE', `--port expects an integer between 0 and 65535, got ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function parseLogLevel(text: string): string {
  const levels: readonly string[] = logSchema.shape.level.unwrap().options;
  if (!levels.includes(text)) {
    throw ternError('ERR_CLI_USAGE', `--log-level expects one of ${levels.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text;
}

/** argv without the node binary and script path, e.g. `process.argv.slice(2)`. */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  const first = argv[0];
  let command = 'broker';
  let rest = argv;
  if (first !== undefined && !first.startsWith('-')) {
    if (!COMMANDS.has(first)) throw ternError('ERR_CLI_USAGE', `unknown command '${first}'`);
    command = first;
    rest = argv.slice(1);
  }
  // passwd has its own flags; it gets its arguments untouched.
  if (command === 'passwd') return { kind: 'passwd', argv: rest };
  if (command === 'bench') return { kind: 'bench', argv: rest };
  if (command === 'bridge') return { kind: 'bridge', argv: rest };
  if (command === 'help') return { kind: 'help' };

  if (command === 'check-config') {
    const { values } = asUsageError(() =>
      parseArgs({ args: [...rest], options: CHECK_OPTIONS, strict: true, allowPositionals: false }),
    );
    if (values.help === true) return { kind: 'help' };
    if (values.version === true) return { kind: 'version' };
    if (values.config === undefined) throw ternError('ERR_CLI_USAGE', 'check-config needs -c FILE');
    return { kind: 'check-config', configFile: values.config };
  }

  const { values } = asUsageError(() =>
    parseArgs({ args: [...rest], options: BROKER_OPTIONS, strict: true, allowPositionals: false }),
  );
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  if (values.listen === '') throw ternError('ERR_CLI_USAGE', '--listen expects an address');
  return {
    kind: 'broker',
    configFile: values.config,
    port: values.port === undefined ? undefined : parsePort(values.port),
    host: values.listen,
    logLevel: values['log-level'] === undefined ? undefined : parseLogLevel(values['log-level']),
    repair: values.repair === true,
  };
}
