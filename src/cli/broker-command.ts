/**
 * `tern broker` (the default command): load the config (a file or the
 * defaults), apply -p/-l/--log-level, start the broker and install the
 * signal handlers. The startup log line names every bound address, so
 * `tern -p 0` tells its caller which port it got. A reload (SIGHUP, or
 * POST /api/v1/reload) re-reads the same file with the same overrides.
 */
import { createBroker } from '../broker/broker.js';
import { loadConfigFile, resolveConfig } from '../config/load.js';
import type { ListenerConfig, TernConfig, TernConfigInput } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { installSignalHandlers } from './signals.js';
import { packageVersion } from './version.js';

export interface BrokerCommandOptions {
  readonly configFile: string | undefined;
  readonly port: number | undefined;
  readonly host: string | undefined;
  readonly logLevel: string | undefined;
  readonly repair: boolean;
}

/** How long past `limits.shutdown_grace_ms` a SIGTERM waits for the broker to close before exiting 1. */
const CLOSE_MARGIN_MS = 10_000;

/** The file's config (or the defaults) with the command-line overrides applied and validated. */
export async function brokerConfig(options: BrokerCommandOptions): Promise<TernConfig> {
  const base = options.configFile === undefined ? resolveConfig({}) : await loadConfigFile(options.configFile);
  if (options.port === undefined && options.host === undefined && options.logLevel === undefined) return base;
  const input: TernConfigInput = { ...base };
  if (options.port !== undefined || options.host !== undefined) {
    // -p / -l change the first listener, or create one when the file has none.
    const [first, ...others] = base.listeners;
    const listener: Partial<ListenerConfig> = { ...first };
    if (options.port !== undefined) listener.port = options.port;
    if (options.host !== undefined) listener.host = options.host;
    input.listeners = [listener, ...others];
  }
  if (options.logLevel !== undefined) {
    input.log = { ...base.log, level: options.logLevel as TernConfig['log']['level'] };
  }
  return resolveConfig(input);
}

/** Start the broker; resolves once it listens (the process then runs until a signal). */
export async function runBrokerCommand(options: BrokerCommandOptions): Promise<void> {
  const config = await brokerConfig(options);
  const log = createLogger(config.log);
  const version = packageVersion();
  const broker = createBroker({
    ...config,
    logger: log,
    repair: options.repair,
    // SIGHUP and POST /api/v1/reload re-read the file, with the same command-line overrides.
    loadConfig: () => brokerConfig(options),
  });
  const removeSignalHandlers = installSignalHandlers({
    close: () => broker.close(),
    // close() is bounded by the grace period; then storage still has to close.
    closeTimeoutMs: () => broker.config.limits.shutdownGraceMs + CLOSE_MARGIN_MS,
    reload: async () => {
      await broker.reload(); // logs what was applied, what needs a restart and what failed
    },
    log,
  });
  let addresses: Array<{ type: string; host: string; port: number }>;
  try {
    addresses = await broker.listen();
  } catch (err) {
    removeSignalHandlers();
    await broker.close().catch(() => undefined);
    throw err;
  }
  const urls = addresses.map((a) => `${a.type}://${a.host}:${a.port}`);
  log.info({ version, addresses }, `tern ${version} started, listening on ${urls.join(', ')}`);
}
