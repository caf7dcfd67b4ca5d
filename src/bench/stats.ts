/** Counters shared by every client of one bench run, plus per-second deltas for the progress line. */
import { Histogram } from './histogram.js';

export class Stats {
  /** QoS 0: written to the socket; QoS 1/2: acknowledged. */
  sent = 0;
  received = 0;
  errors = 0;
  connected = 0;
  connectFailures = 0;
  readonly errorSamples: string[] = [];
  /** End-to-end latency (µs) over the whole run, and since the last progress line. */
  readonly latency = new Histogram();
  readonly interval = new Histogram();
  /** Connect time (µs) per client: TCP + CONNACK. */
  readonly connectTime = new Histogram();

  recordLatency(us: number): void {
    this.latency.record(us);
    this.interval.record(us);
  }

  error(err: Error | string): void {
    this.errors++;
    if (this.errorSamples.length < 5) this.errorSamples.push(typeof err === 'string' ? err : err.message);
  }
}
