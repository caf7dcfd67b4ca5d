/**
 * Tern's logger: pino, JSON lines by default. `pretty` formats lines with
 * pino-pretty's synchronous prettifier in this thread (no worker transport),
 * so it behaves the same in tests, the CLI and short-lived processes.
 */
import { pino } from 'pino';
import pinoPretty from 'pino-pretty';
import type { LogConfig } from '../config/schema.js';

export type Logger = pino.Logger;

export interface CreateLoggerOptions {
  /** A stream or file descriptor to write to; default stdout (fd 1). */
  destination?: NodeJS.WritableStream | number;
}

/** A destination that prettifies each JSON line before writing it. */
class PrettyDestination {
  readonly #out: NodeJS.WritableStream | pino.DestinationStream;
  readonly #format: (line: string) => string;

  constructor(out: NodeJS.WritableStream | pino.DestinationStream, colorize: boolean) {
    this.#out = out;
    this.#format = pinoPretty.prettyFactory({
      colorize,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
    });
  }

  write(line: string): void {
    this.#out.write(this.#format(line));
  }
}

function isTty(destination: NodeJS.WritableStream | number): boolean {
  if (typeof destination === 'number') return destination === 1 ? process.stdout.isTTY === true : false;
  return (destination as { isTTY?: boolean }).isTTY === true;
}

/** Build the process logger from the `[log]` config section. */
export function createLogger(cfg: LogConfig, opts: CreateLoggerOptions = {}): Logger {
  const target = opts.destination ?? 1;
  const out: NodeJS.WritableStream | pino.DestinationStream =
    typeof target === 'number' ? pino.destination({ dest: target, sync: true }) : target;
  const pretty = cfg.format === 'pretty' || (cfg.format === 'auto' && isTty(target));
  const stream: pino.DestinationStream = pretty
    ? new PrettyDestination(out, isTty(target))
    : (out as pino.DestinationStream);
  return pino({ name: 'tern', level: cfg.level, base: undefined }, stream);
}
