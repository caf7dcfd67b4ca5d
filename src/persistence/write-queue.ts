/**
 * Group commit: ops submitted by many callers within a short window go to the
 * backend as ONE commit, so a durable backend pays its transaction (and, with
 * durability `full`, its fsync) once per group instead of once per message.
 *
 * Invariants:
 * - Ops are applied in submit order, across and within submissions, except
 *   for the cancellations below, which leave every group's end state as the
 *   ops in submit order would.
 * - Commits never overlap: the next group starts after the current one settles.
 * - A group starts `maxDelayMs` after its first submission, in the check phase
 *   (setImmediate) of the event-loop pass in which that delay ran out: the I/O
 *   that was already waiting is read first, so acknowledgements that arrived
 *   meanwhile cancel what they make pointless (below). When `maxOps` ops are
 *   pending the group starts in the check phase of the current pass, without
 *   waiting for the delay. Submissions that arrive during a commit, or after
 *   the group's delay ran out, go to a later group.
 * - A group holds whole submissions and at most `maxOps` ops, except a single
 *   submission larger than that, which commits alone. Ops moved onto earlier
 *   ones (below) do not count.
 * - Each caller's promise resolves once its group is committed, and rejects if
 *   it is not. When a group's commit fails, its submissions are retried one
 *   commit each, so one caller's invalid op (or refused retained write) fails
 *   only that caller.
 *
 * Cancellation (an outbound entry written and then finished before its group
 * starts is the common case for a connected persistent subscriber: the
 * message is delivered, and acknowledged, while its PUBLISH waits for the
 * commit):
 * - A putOutbound of (client, seq) whose earlier putOutbound of the same key
 *   and message still waits takes that earlier op's place; a deleteOutbound of
 *   a waiting key takes the place of the first waiting put. The later op moves
 *   EARLIER (never later), so the group holding the publisher's submission
 *   already has the newest state: a commit never makes durable a state the
 *   broker has left (a QoS 2 message completed but stored as undelivered
 *   would be delivered twice after a crash). A deleteSession of the client
 *   stops this for the keys put before it.
 * - A deleteOutbound of a key whose waiting put was marked `fresh` (no row
 *   of that key exists) cancels both. A submission left with nothing but
 *   putMessage ops resolves at once: a PUBLISH whose every delivery was
 *   acknowledged before its group started is acknowledged without waiting.
 * - In each group, a putMessage no putOutbound of the group references is
 *   left out (the backend would collect it at the end of the commit anyway),
 *   as is a repeated putMessage of the same id (a no-op).
 * A failed group is retried per submission with these moves applied, so its
 * end state stays the same; a move out of a submission of a later group is
 * lost if the submission it moved into fails.
 */
import { ternError } from '../errors.js';
import type { Persistence, StorageOp } from './persistence.js';

export interface WriteQueueOptions {
  /** Longest a submission waits for others to join its group, ms. Default 2. */
  maxDelayMs?: number;
  /** Ops that start a group without waiting for the delay; also the largest group. Default 4000. */
  maxOps?: number;
}

interface Submission {
  readonly ops: readonly StorageOp[];
  /** performance.now() at submit. */
  readonly at: number;
  /** Ops not moved away or cancelled. */
  live: number;
  /** Live ops other than putMessage: once a cancellation takes this to 0, the submission has nothing to store. */
  needed: number;
  /** Moves and cancellations, by index into `ops`: the op to apply instead, or null for none. */
  patch: Map<number, StorageOp | null> | null;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Where the first waiting putOutbound of a (client, seq) is. */
interface Slot {
  sub: Submission;
  index: number;
  messageId: number;
  /** The put in the slot was marked fresh: no row of this key exists. */
  fresh: boolean;
}

type OutboundOp = Extract<StorageOp, { type: 'putOutbound' | 'deleteOutbound' }>;

export class WriteQueue {
  readonly #p: Pick<Persistence, 'commit'>;
  readonly #maxDelayMs: number;
  readonly #maxOps: number;
  #pending: Submission[] = [];
  #pendingOps = 0;
  readonly #slots = new SlotIndex();
  #timer: NodeJS.Timeout | null = null;
  /** Submissions whose delay ran out (a prefix of #pending), while their start waits for setImmediate. */
  #due = 0;
  #immediate: NodeJS.Immediate | null = null;
  /** The running drain loop, while one runs. */
  #running: Promise<void> | null = null;
  #closed = false;

  constructor(p: Pick<Persistence, 'commit'>, opts: WriteQueueOptions = {}) {
    this.#p = p;
    this.#maxDelayMs = opts.maxDelayMs ?? 2;
    this.#maxOps = opts.maxOps ?? 4000;
  }

  /** Ops waiting for their group to start (not counting ops moved onto earlier ones). */
  get pendingOps(): number {
    return this.#pendingOps;
  }

  /** Resolves when `ops` are committed; rejects with the commit's error. */
  submit(ops: readonly StorageOp[]): Promise<void> {
    if (this.#closed) return Promise.reject(ternError('ERR_STORAGE_CLOSED', 'write queue is closed'));
    return new Promise<void>((resolve, reject) => {
      const sub: Submission = { ops, at: performance.now(), live: ops.length, needed: countNeeded(ops), patch: null, resolve, reject };
      this.#pending.push(sub);
      this.#pendingOps += ops.length - this.#slots.index(sub);
      if (this.#running !== null) return; // the drain loop takes it after the current commit
      if (this.#pendingOps >= this.#maxOps) this.#onTimer();
      else this.#timer ??= setTimeout(this.#onTimer, this.#maxDelayMs);
    });
  }

  /** Starts the pending group now; resolves when everything submitted so far has settled. */
  async flush(): Promise<void> {
    for (;;) {
      this.#start(this.#pending.length);
      if (this.#running === null) return;
      await this.#running;
    }
  }

  /** Refuses further submissions and flushes the pending ones. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  /** The delay of the first waiting submission ran out (or maxOps ops wait): start after this pass's I/O. */
  readonly #onTimer = (): void => {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    this.#due = this.#pending.length;
    this.#immediate ??= setImmediate(this.#onImmediate);
  };

  readonly #onImmediate = (): void => {
    this.#immediate = null;
    this.#start(this.#due);
  };

  /** Starts the drain loop with the first `due` submissions (at least one group). */
  #start(due: number): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#running !== null || this.#pending.length === 0) return;
    this.#due = Math.max(due, 1);
    this.#running = this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#due > 0 && this.#pending.length > 0) await this.#commitGroup(this.#takeGroup());
    this.#due = 0;
    this.#running = null;
    // Submissions made during the commit: their delay counts from their submit.
    const first = this.#pending[0];
    if (first === undefined) return;
    if (this.#closed) this.#start(this.#pending.length);
    else this.#timer ??= setTimeout(this.#onTimer, Math.max(0, first.at + this.#maxDelayMs - performance.now()));
  }

  // ---- groups ----

  #takeGroup(): Submission[] {
    const pending = this.#pending;
    const limit = Math.min(this.#due, pending.length);
    let n = 0;
    let ops = 0;
    while (n < limit && (n === 0 || ops + pending[n]!.live <= this.#maxOps)) {
      ops += pending[n]!.live;
      n++;
    }
    this.#pendingOps -= ops;
    this.#due -= n;
    if (n === pending.length) {
      this.#pending = [];
      this.#slots.clear();
      return pending;
    }
    const group = pending.splice(0, n);
    this.#slots.unindex(group);
    return group;
  }

  async #commitGroup(group: Submission[]): Promise<void> {
    try {
      await this.#commit(group);
    } catch (err) {
      if (group.length === 1) {
        group[0]!.reject(err);
        return;
      }
      // Isolate the failure: commit each submission alone, in order.
      for (const s of group) {
        try {
          await this.#commit([s]);
          s.resolve();
        } catch (err) {
          s.reject(err);
        }
      }
      return;
    }
    for (const s of group) s.resolve();
  }

  /** Commits the submissions' ops with the moves applied; nothing to commit costs no commit. */
  #commit(group: readonly Submission[]): Promise<void> {
    const ops = dropUnreferencedMessages(applied(group));
    return ops.length === 0 ? Promise.resolve() : this.#p.commit(ops);
  }
}

/** The waiting putOutbound ops by client id, then seq: where later outbound ops of the same key move to. */
class SlotIndex {
  readonly #slots = new Map<string, Map<number, Slot>>();

  /**
   * Records the submission's outbound ops, moving each onto a waiting op of
   * the same key where it can; returns how many ops (of this submission or
   * earlier ones) that left with nothing to do.
   */
  index(sub: Submission): number {
    const ops = sub.ops;
    let moved = 0;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (op.type === 'putOutbound') {
        const slots = this.#slots.get(op.clientId);
        const slot = slots?.get(op.entry.seq);
        if (slot !== undefined && slot.messageId === op.entry.messageId) {
          // A newer state of a waiting entry: it replaces the waiting op in place.
          setPatch(slot.sub, slot.index, op);
          setPatch(sub, i, null);
          moved++;
        } else {
          const entry: Slot = { sub, index: i, messageId: op.entry.messageId, fresh: op.fresh === true };
          if (slots === undefined) this.#slots.set(op.clientId, new Map([[op.entry.seq, entry]]));
          else slots.set(op.entry.seq, entry);
        }
      } else if (op.type === 'deleteOutbound') {
        const slots = this.#slots.get(op.clientId);
        const slot = slots?.get(op.seq);
        if (slot !== undefined) {
          if (slot.fresh) {
            // Never written to the store: nothing to delete either.
            cancel(slot.sub, slot.index);
            cancel(sub, i);
            moved += 2;
          } else {
            setPatch(slot.sub, slot.index, op);
            setPatch(sub, i, null);
            moved++;
          }
          slots!.delete(op.seq);
          if (slots!.size === 0) this.#slots.delete(op.clientId);
        }
      } else if (op.type === 'deleteSession') {
        this.#slots.delete(op.clientId);
      }
    }
    return moved;
  }

  clear(): void {
    this.#slots.clear();
  }

  /** Forgets the slots of submissions leaving the queue. */
  unindex(group: readonly Submission[]): void {
    if (this.#slots.size === 0) return;
    for (const sub of group) {
      for (const op of sub.ops) {
        if (op.type !== 'putOutbound') continue;
        const slots = this.#slots.get(op.clientId);
        if (slots === undefined || slots.get(op.entry.seq)?.sub !== sub) continue;
        slots.delete(op.entry.seq);
        if (slots.size === 0) this.#slots.delete(op.clientId);
      }
    }
  }
}

/**
 * Puts `op` in place of `sub.ops[index]` (an outbound op): the op moved to an
 * earlier submission (null), or a later op of the same key moved here.
 */
function setPatch(sub: Submission, index: number, op: OutboundOp | null): void {
  (sub.patch ??= new Map()).set(index, op);
  if (op === null) sub.live--;
}

/**
 * Cancels `sub.ops[index]` outright. A submission left with nothing to store
 * resolves now: the entries it wrote were finished before they were stored,
 * and its other ops (putMessage) are not its caller's concern. It stays in
 * the queue, so its group still sees its ops.
 */
function cancel(sub: Submission, index: number): void {
  setPatch(sub, index, null);
  if (--sub.needed === 0) sub.resolve();
}

function countNeeded(ops: readonly StorageOp[]): number {
  let n = 0;
  for (const op of ops) if (op.type !== 'putMessage') n++;
  return n;
}

/** The group's ops with the moves applied. */
function applied(group: readonly Submission[]): readonly StorageOp[] {
  if (group.length === 1 && group[0]!.patch === null) return group[0]!.ops;
  const out: StorageOp[] = [];
  for (const s of group) {
    const patch = s.patch;
    const ops = s.ops;
    if (patch === null) {
      for (let i = 0; i < ops.length; i++) out.push(ops[i]!);
      continue;
    }
    for (let i = 0; i < ops.length; i++) {
      const op = patch.has(i) ? patch.get(i)! : ops[i]!;
      if (op !== null) out.push(op);
    }
  }
  return out;
}

/**
 * Leaves out a putMessage no putOutbound of `ops` references (it would be
 * collected at the end of the commit, and is already stored if an older row
 * references it), and a putMessage of an id already put. Ops are never
 * reordered; the same array comes back when nothing is left out.
 */
export function dropUnreferencedMessages(ops: readonly StorageOp[]): readonly StorageOp[] {
  let puts = 0;
  for (const op of ops) if (op.type === 'putMessage') puts++;
  if (puts === 0) return ops;
  const referenced = new Set<number>();
  for (const op of ops) if (op.type === 'putOutbound') referenced.add(op.entry.messageId);
  const seen = new Set<number>();
  let out: StorageOp[] | null = null;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    const keep = op.type !== 'putMessage' || (referenced.has(op.message.id) && !seen.has(op.message.id));
    if (op.type === 'putMessage' && keep) seen.add(op.message.id);
    if (!keep && out === null) out = ops.slice(0, i);
    else if (keep && out !== null) out.push(op);
  }
  return out ?? ops;
}

/**
 * The same cancellations the queue makes across submissions, applied to one
 * list of ops: a putOutbound takes the place of a waiting earlier put of the
 * same key and message, a deleteOutbound the place of the first waiting put
 * of its key, or cancels it and itself when that put was `fresh` (moves go
 * earlier, never later; a deleteSession ends the waiting of its client's
 * keys); then dropUnreferencedMessages. The end state of a commit of the
 * result is that of a commit of `ops`. The same array comes back when nothing
 * changes.
 */
export function compactOps(ops: readonly StorageOp[]): readonly StorageOp[] {
  const sub: Submission = { ops, at: 0, live: ops.length, needed: countNeeded(ops), patch: null, resolve: noop, reject: noop };
  new SlotIndex().index(sub);
  return dropUnreferencedMessages(applied([sub]));
}

function noop(): void {}
