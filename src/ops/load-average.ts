/**
 * Mosquitto's $SYS load figures (src/sys_tree.c calc_load): a per-minute rate
 * over the last interval, smoothed exponentially with time constants of 1, 5
 * and 15 minutes, like Unix load averages.
 */
const WINDOWS_SECONDS = [60, 300, 900] as const;

export class LoadAverage {
  /** Smoothed per-minute rates for 1, 5 and 15 minutes. */
  readonly values: [number, number, number] = [0, 0, 0];
  #lastTotal: number;
  #lastTime: number;

  constructor(total: number, now: number) {
    this.#lastTotal = total;
    this.#lastTime = now;
  }

  /** Feed the counter's current total at `now` (ms); returns the updated averages. */
  update(total: number, now: number): readonly [number, number, number] {
    const seconds = (now - this.#lastTime) / 1000;
    if (seconds <= 0) return this.values;
    const perMinute = ((total - this.#lastTotal) * 60) / seconds;
    for (let i = 0; i < 3; i++) {
      const exponent = Math.exp(-seconds / WINDOWS_SECONDS[i]!);
      this.values[i] = perMinute + exponent * (this.values[i]! - perMinute);
    }
    this.#lastTotal = total;
    this.#lastTime = now;
    return this.values;
  }
}
