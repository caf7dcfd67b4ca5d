/**
 * Group commit: ops submitted by many callers within a short window go to the
 * backend as ONE commit, so a durable backend pays its transaction (and, with
 * durability `full`, its fsync) once per group instead of once per message.
 *
 * Invariants:
 * - Ops are applied in submit order, across and within submissions.
 * - Commits never overlap: the next group starts after the current one settles.
 * - A submission waits at most `maxDelayMs` before its group starts (plus the
 *   time of the commit in progress, if any); a group starts at once when
 *   `maxOps` ops are pending. Submissions that arrive during a commit form the
 *   next group, which starts as soon as that commit settles.
 * - A group holds whole submissions and at most `maxOps` ops, except a single
 *   submission larger than that, which commits alone.
 * - Each caller's promise resolves once its ops are committed, and rejects if
 *   they are not. When a group's commit fails, its submissions are retried one
 *   commit each, so one caller's invalid op (or refused retained write) fails
 *   only that caller.
 */
import { ternError } from '../errors.js';
import type { Persistence, StorageOp } from './persistence.js';

export interface WriteQueueOptions {
  /** Longest a submission waits for others to join its group, ms. Default 2. */
  maxDelayMs?: number;
  /** Ops that start a group at once without waiting; also the largest group. Default 1000. */
  maxOps?: number;
}

interface Submission {
  ops: readonly StorageOp[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class WriteQueue {
  readonly #p: Pick<Persistence, 'commit'>;
  readonly #maxDelayMs: number;
  readonly #maxOps: number;
  #pending: Submission[] = [];
  #pendingOps = 0;
  #timer: NodeJS.Timeout | null = null;
  /** The running drain loop, while one runs. */
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(p: Pick<Persistence, 'commit'>, opts: WriteQueueOptions = {}) {
    this.#p = p;
    this.#maxDelayMs = opts.maxDelayMs ?? 2;
    this.#maxOps = opts.maxOps ?? 1000;
  }

  /** Ops waiting for their group to start. */
  get pendingOps(): number {
    return this.#pendingOps;
  }

  /** Resolves when `ops` are committed; rejects with the commit's error. */
  submit(ops: readonly StorageOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(ternError('ERR_STORAGE_CLOSED', 'write queue is closed'));
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ ops, resolve, reject });
      this.#pendingOps += ops.length;
      if (this.#running !== null) return; // the drain loop takes it after the current commit
      if (this.#pendingOps >= this.#maxOps) this.#start();
      else this.#timer ??= setTimeout(this.#onTimer, this.#maxDelayMs);
    });
  }

  /** Starts the pending group now; resolves when everything submitted so far has settled. */
  async flush(): Promise<void> {
    this.#start();
    while (this.#running !== null) await this.#running;
  }

  /** Refuses further submissions and flushes the pending ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    this.#start();
  };

  #start(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#running !== null || this.#pending.length === 0) return;
    this.#running = this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#pending.length > 0) await this.#commitGroup(this.#takeGroup());
    this.#running = null;
  }

  #takeGroup(): Submission[] {
    const pending = this.#pending;
    let n = 0;
    let ops = 0;
    while (n < pending.length && (n === 0 || ops + pending[n]!.ops.length <= this.#maxOps)) {
      ops += pending[n]!.ops.length;
      n++;
    }
    this.#pendingOps -= ops;
    if (n === pending.length) {
      this.#pending = [];
      return pending;
    }
    return pending.splice(0, n);
  }

  async #commitGroup(group: Submission[]): Promise<void> {
    if (group.length === 1) {
      const only = group[0]!;
      try {
        await this.#p.commit(compactOps(only.ops));
        only.resolve();
      } catch (err) {
        only.reject(err);
      }
      return;
    }
    const ops: StorageOp[] = [];
    for (const s of group) for (const op of s.ops) ops.push(op);
    try {
      await this.#p.commit(compactOps(ops));
    } catch {
      // Isolate the failure: commit each submission alone, in order.
      for (const s of group) {
        try {
          await this.#p.commit(s.ops);
          s.resolve();
        } catch (err) {
          s.reject(err);
        }
      }
      return;
    }
    for (const s of group) s.resolve();
  }
}

/**
 * Cancel work a group would undo itself: an outbound entry written and then
 * deleted within one group (a message delivered and acknowledged inside one
 * commit window, the common case for a connected persistent subscriber) is
 * not written, and a message no remaining op references is not stored. The
 * group commits atomically, so the store ends in the same state either way.
 * The deletes stay (a no-op when the row never existed). Ops are never
 * reordered.
 */
export function compactOps(ops: readonly StorageOp[]): readonly StorageOp[] {
  let deletes = 0;
  for (const op of ops) if (op.type === 'deleteOutbound') deletes++;
  if (deletes === 0) return ops;
  // Walk backwards: a put is dropped when a delete of the same key comes after it.
  const deletedLater = new Set<string>();
  const keep = new Array<boolean>(ops.length).fill(true);
  let dropped = 0;
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i]!;
    if (op.type === 'deleteOutbound') deletedLater.add(`${op.clientId}\u0000${op.seq}`);
    else if (op.type === 'putOutbound' && deletedLater.has(`${op.clientId}\u0000${op.entry.seq}`)) {
      keep[i] = false;
      dropped++;
    }
  }
  if (dropped === 0) return ops;
  const referenced = new Set<number>();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (!keep[i]) continue;
    if (op.type === 'putOutbound') referenced.add(op.entry.messageId);
    else if (op.type === 'putRetained') referenced.add(op.message.id);
  }
  const out: StorageOp[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (!keep[i]) continue;
    if (op.type === 'putMessage' && !referenced.has(op.message.id)) continue;
    out.push(op);
  }
  return out;
}
