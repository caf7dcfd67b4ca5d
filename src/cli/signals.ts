/**
 * Process signal wiring for the CLI (kept out of the broker library, which
 * never touches process-wide state):
 * - SIGINT/SIGTERM: close gracefully, then exit 0 (1 if closing failed or
 *   took longer than `closeTimeoutMs`, read when the signal comes); a second
 *   signal forces exit 1.
 * - SIGHUP: call `reload` if given (the broker re-reads its config file, certificates,
 *   password and ACL files; see Broker.reload).
 */
import type { Logger } from '../observability/logger.js';

type Signal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** The part of `process` this module uses; tests pass an EventEmitter. */
export interface SignalSource {
  on(event: Signal, listener: (signal: Signal) => void): unknown;
  off(event: Signal, listener: (signal: Signal) => void): unknown;
}

export interface SignalHandlerOptions {
  /** Graceful shutdown, e.g. `() => broker.close()`. */
  close: () => Promise<void>;
  /** Called on SIGHUP. */
  reload?: () => void | Promise<void>;
  log: Logger;
  /**
   * Exit 1 if close() has not finished after this long, milliseconds; a
   * function is asked when the signal comes (the broker's grace period may
   * have been reloaded). Default 15000.
   */
  closeTimeoutMs?: number | (() => number);
  /** Default `process.exit`. */
  exit?: (code: number) => void;
  /** Default `process`. */
  source?: SignalSource;
}

/** Install the handlers; returns a function that removes them. */
export function installSignalHandlers(options: SignalHandlerOptions): () => void {
  const { close, reload, log } = options;
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const source: SignalSource = options.source ?? process;
  const timeoutOption = options.closeTimeoutMs ?? 15_000;
  let stopping = false;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;

  /** Exit exactly once, whichever of close, timeout or a second signal comes first. */
  const finish = (code: number): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    exit(code);
  };

  const onStop = (signal: Signal): void => {
    if (stopping) {
      log.warn({ signal }, `received ${signal} again, exiting now`);
      finish(1);
      return;
    }
    stopping = true;
    const closeTimeoutMs = typeof timeoutOption === 'function' ? timeoutOption() : timeoutOption;
    log.info({ signal }, `received ${signal}, shutting down`);
    // Not unref'd: a shutdown that stalls must still end in an exit, with code 1.
    timer = setTimeout(() => {
      log.error({ closeTimeoutMs }, 'shutdown did not finish in time, exiting');
      finish(1);
    }, closeTimeoutMs);
    close().then(
      () => finish(0),
      (err: unknown) => {
        log.error({ err }, 'error while shutting down');
        finish(1);
      },
    );
  };

  const onHangup = (signal: Signal): void => {
    if (reload === undefined) {
      log.info({ signal }, `received ${signal}; nothing to reload`);
      return;
    }
    log.info({ signal }, `received ${signal}, reloading`);
    Promise.resolve()
      .then(reload)
      .catch((err: unknown) => log.error({ err }, 'reload failed'));
  };

  source.on('SIGINT', onStop);
  source.on('SIGTERM', onStop);
  source.on('SIGHUP', onHangup);
  return () => {
    source.off('SIGINT', onStop);
    source.off('SIGTERM', onStop);
    source.off('SIGHUP', onHangup);
  };
}
