/**
 * `tern bridge -c bridge.toml`: run one bridge standalone (the local side is
 * an MQTT connection to a local broker). Resolves with the exit code once the
 * bridge has stopped: 0 after SIGINT/SIGTERM and a clean close, 1 when
 * closing failed, 2 on a usage error. A bad config or a locked cache throws
 * (a TernError the entry point prints as one line).
 */
import { parseArgs } from 'node:util';
import { createBridge, type Bridge } from '../bridge/bridge.js';
import { loadBridgeConfigFile } from '../bridge/config.js';
import { logSchema } from '../config/schema.js';
import { ternError } from '../errors.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { installSignalHandlers } from './signals.js';

export const BRIDGE_USAGE = `Usage: tern bridge -c FILE [--log-level LEVEL]

Runs an MQTT bridge between a local broker and a remote one (see docs/bridge.md).

Options:
  -c, --config FILE      Bridge configuration (TOML; see examples/bridge.toml)
      --log-level LEVEL  trace, debug, info, warn, error, fatal or silent
  -h, --help             Show this help
`;

function parse(argv: string[]): { configFile: string | undefined; logLevel: string | undefined; help: boolean } {
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    });
    return { configFile: values.config, logLevel: values['log-level'], help: values.help ?? false };
  } catch (err) {
    throw ternError('ERR_CLI_USAGE', (err as Error).message);
  }
}

/** Log the bridge's life: connects, drops (rate-limited by the stats tick), errors. */
function wireLogs(bridge: Bridge, log: Logger): void {
  bridge.on('remoteUp', (sessionPresent) => log.info({ sessionPresent }, 'remote connected'));
  bridge.on('remoteDown', (err) => log.warn({ err: err?.message }, 'remote link down'));
  bridge.on('localUp', () => log.info('local broker connected'));
  bridge.on('localDown', (err) => log.warn({ err: err?.message }, 'local broker link down'));
  bridge.on('cacheReset', (file, movedTo) => log.error({ file, movedTo }, 'cache file was corrupt: moved aside, started a fresh cache'));
  bridge.on('drained', () => log.info('backlog drained'));
  bridge.on('error', (err) => log.error({ err }, err.message));
  let lastDrops = 0;
  bridge.on('stats', (s) => {
    let drops = 0;
    for (const n of Object.values(s.drops)) drops += n;
    if (drops !== lastDrops) {
      log.warn({ drops: s.drops }, `${drops - lastDrops} messages dropped`);
      lastDrops = drops;
    }
    if (s.backlog.messages > 0) log.debug({ backlog: s.backlog, replayRate: s.replayRate, inflight: s.inflight }, 'backlog');
  });
}

export async function runBridge(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args.help) {
    process.stdout.write(BRIDGE_USAGE);
    return 0;
  }
  if (args.configFile === undefined) throw ternError('ERR_CLI_USAGE', 'tern bridge needs -c FILE');
  const config = await loadBridgeConfigFile(args.configFile);
  const logConfig = args.logLevel === undefined ? config.log : logSchema.parse({ ...config.log, level: args.logLevel });
  const log = createLogger(logConfig).child({ bridge: config.name });
  const bridge = createBridge(config);
  wireLogs(bridge, log);
  let exit: (code: number) => void = () => undefined;
  const stopped = new Promise<number>((resolve) => {
    exit = resolve;
  });
  const remove = installSignalHandlers({ close: () => bridge.close(), log, exit: (code) => exit(code) });
  try {
    await bridge.start();
  } catch (err) {
    remove();
    await bridge.close().catch(() => undefined);
    throw err;
  }
  const s = bridge.stats();
  log.info(
    { local: s.local.description, remote: s.remote.description, cache: s.cacheFile, backlog: s.backlog.messages },
    `bridge ${config.name} started`,
  );
  const code = await stopped;
  remove();
  log.info({ forwarded: bridge.stats().forwarded }, `bridge ${config.name} stopped`);
  return code;
}
