/**
 * Client keep-alive [MQTT-3.1.2-23]: if nothing was sent for the keep-alive
 * period, send PINGREQ; if its PINGRESP does not come within the ping
 * timeout, the link is dead and the client closes it (MQTT 3.1.1 §3.1.2.10).
 *
 * One interval timer ticks every half period and a write only sets a flag, so
 * the per-packet cost is one store. A tick that finds no write since the
 * previous tick pings: the longest silence is therefore one period.
 */
export interface KeepaliveHost {
  sendPingreq(): void;
  keepaliveTimedOut(): void;
}

export class Keepalive {
  readonly #host: KeepaliveHost;
  #interval: NodeJS.Timeout | undefined = undefined;
  #pingTimer: NodeJS.Timeout | undefined = undefined;
  #pingTimeoutMs = 0;
  #pingSentAt = 0;
  /** Set by every write; cleared by each tick. */
  wrote = false;

  constructor(host: KeepaliveHost) {
    this.#host = host;
  }

  /** Whether a PINGREQ is waiting for its PINGRESP. */
  get awaitingPingresp(): boolean {
    return this.#pingTimer !== undefined;
  }

  start(keepaliveSeconds: number, pingTimeoutMs: number): void {
    this.stop();
    if (keepaliveSeconds <= 0) return;
    this.#pingTimeoutMs = pingTimeoutMs;
    this.wrote = true;
    this.#interval = setInterval(() => this.#tick(), (keepaliveSeconds * 1000) / 2);
    this.#interval.unref();
  }

  stop(): void {
    clearInterval(this.#interval);
    clearTimeout(this.#pingTimer);
    this.#interval = undefined;
    this.#pingTimer = undefined;
  }

  /** PINGRESP arrived; returns the round trip in ms (0 if none was pending). */
  pingresp(): number {
    if (this.#pingTimer === undefined) return 0;
    clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    return Date.now() - this.#pingSentAt;
  }

  #tick(): void {
    if (!this.wrote && this.#pingTimer === undefined) {
      this.#pingSentAt = Date.now();
      this.#pingTimer = setTimeout(() => {
        this.#pingTimer = undefined;
        this.#host.keepaliveTimedOut();
      }, this.#pingTimeoutMs);
      this.#pingTimer.unref();
      this.#host.sendPingreq();
    }
    this.wrote = false;
  }
}
