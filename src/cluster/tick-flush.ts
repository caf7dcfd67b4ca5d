/**
 * Group everything asked for during one event-loop tick into one write:
 * the first request() of a tick schedules `flush` for the next tick, and
 * every caller of that tick shares its promise (an acknowledgement waits on
 * it). A failure reaches those waiters; with nobody waiting it goes to
 * `onError` instead of becoming an unhandled rejection.
 */
export class TickFlush {
  readonly #flush: () => Promise<void>;
  readonly #onError: (err: unknown) => void;
  #pending: Promise<void> | null = null;

  constructor(flush: () => Promise<void>, onError: (err: unknown) => void) {
    this.#flush = flush;
    this.#onError = onError;
  }

  request(): void {
    if (this.#pending !== null) return;
    const p = new Promise((resolve) => process.nextTick(resolve)).then(() => {
      this.#pending = null;
      return this.#flush();
    });
    p.catch((err: unknown) => this.#onError(err));
    this.#pending = p;
  }

  /** The promise of the flush carrying what was requested so far, or undefined when none waits. */
  get pending(): Promise<void> | undefined {
    return this.#pending ?? undefined;
  }
}
