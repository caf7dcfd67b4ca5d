/**
 * A fixed-size log-bucket histogram (HDR-like) for latencies in
 * microseconds: values below 64 are exact, larger ones fall in 32 buckets per
 * power of two (relative error under 3.2%). Recording is a clz32, a shift and
 * an increment; no allocation after construction. Range: 0 .. 2^31-1 µs.
 */
const SUB_BITS = 5;
const SUB = 1 << SUB_BITS; // 32 buckets per octave
const BUCKETS = 27 * SUB; // octaves 2^6 .. 2^30, plus the 64 exact values
const MAX_VALUE = 2 ** 31 - 1;

function indexOf(v: number): number {
  const msb = 31 - Math.clz32(v);
  if (msb <= SUB_BITS) return v;
  const shift = msb - SUB_BITS;
  return shift * SUB + (v >>> shift);
}

/** Lowest and highest value that land in bucket `i`. */
function bounds(i: number): [number, number] {
  if (i < 2 * SUB) return [i, i];
  const shift = (i >> SUB_BITS) - 1;
  const m = (i & (SUB - 1)) | SUB;
  return [m * 2 ** shift, (m + 1) * 2 ** shift - 1];
}

export class Histogram {
  readonly #counts = new Float64Array(BUCKETS);
  count = 0;
  min = Infinity;
  max = 0;
  sum = 0;

  /** Record one value (µs); negatives count as 0, huge values are clamped. */
  record(value: number): void {
    let v = value > 0 ? Math.floor(value) : 0;
    if (v > MAX_VALUE) v = MAX_VALUE;
    this.#counts[indexOf(v)]!++;
    this.count++;
    this.sum += v;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
  }

  /** The value at percentile `p` (0..100): the middle of its bucket, within [min, max]; p100 is the exact max; 0 when empty. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    if (p >= 100) return this.max;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    const counts = this.#counts;
    for (let i = 0; i < BUCKETS; i++) {
      seen += counts[i]!;
      if (seen >= rank) {
        const [lo, hi] = bounds(i);
        const mid = (lo + hi) / 2;
        return Math.min(this.max, Math.max(this.min, mid));
      }
    }
    return this.max;
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  merge(other: Histogram): void {
    const a = this.#counts;
    const b = other.#counts;
    for (let i = 0; i < BUCKETS; i++) a[i]! += b[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  reset(): void {
    this.#counts.fill(0);
    this.count = 0;
    this.min = Infinity;
    this.max = 0;
    this.sum = 0;
  }
}
