/**
 * The newest pipeline entries, held in memory so live traffic is sent
 * without reading back what was just written. Entries are contiguous in seq
 * (every assigned seq is pushed), so `get(seq)` is an index computation.
 */
import type { Entry } from './entry.js';

export class SeqRing {
  #items: Array<Entry | undefined> = new Array<Entry | undefined>(1024);
  #head = 0;
  #size = 0;
  /** seq of the oldest entry held (== next seq when empty). */
  loSeq: number;
  bytes = 0;

  constructor(nextSeq: number) {
    this.loSeq = nextSeq;
  }

  get size(): number {
    return this.#size;
  }

  push(e: Entry): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = e;
    this.#size++;
    this.bytes += e.size;
  }

  peek(): Entry | undefined {
    return this.#size === 0 ? undefined : this.#items[this.#head];
  }

  shift(): void {
    if (this.#size === 0) return;
    const e = this.#items[this.#head]!;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    this.bytes -= e.size;
    this.loSeq++;
  }

  /** The entry with `seq`, if held. */
  get(seq: number): Entry | undefined {
    const i = seq - this.loSeq;
    if (i < 0 || i >= this.#size) return undefined;
    return this.#items[(this.#head + i) & (this.#items.length - 1)];
  }

  #grow(): void {
    const old = this.#items;
    const next = new Array<Entry | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) next[i] = old[(this.#head + i) & (old.length - 1)];
    this.#items = next;
    this.#head = 0;
  }
}
