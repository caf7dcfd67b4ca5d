import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { isTernError, ternError } from '../../src/errors.js';
import type { StorageOp } from '../../src/persistence/persistence.js';
import { WriteQueue, compactOps } from '../../src/persistence/write-queue.js';

const TIMEOUT = { timeout: 10_000 };

/** A backend whose commits are recorded and settled by the test. */
class FakeBackend {
  readonly commits: StorageOp[][] = [];
  #settle: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  #waiters: Array<() => void> = [];
  active = 0;
  maxActive = 0;
  /** When set, commits settle at once: rejected if they contain this client id. */
  auto: { failClient?: string } | null = null;

  commit = (ops: readonly StorageOp[]): Promise<void> => {
    this.commits.push([...ops]);
    for (const w of this.#waiters.splice(0)) w();
    if (this.auto !== null) {
      const bad = this.auto.failClient;
      if (bad !== undefined && ops.some((op) => op.type === 'deleteSession' && op.clientId === bad)) {
        return Promise.reject(ternError('ERR_STORAGE_INVALID_OP', bad));
      }
      return Promise.resolve();
    }
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    return new Promise<void>((resolve, reject) => {
      this.#settle.push({
        resolve: () => {
          this.active--;
          resolve();
        },
        reject: (err) => {
          this.active--;
          reject(err);
        },
      });
    });
  };

  /** Resolves once `n` commits have been made. */
  async untilCommits(n: number): Promise<void> {
    while (this.commits.length < n) await new Promise<void>((r) => this.#waiters.push(r));
  }

  resolveNext(): void {
    this.#settle.shift()!.resolve();
  }

  rejectNext(err: unknown): void {
    this.#settle.shift()!.reject(err);
  }
}

function op(clientId: string): StorageOp {
  return { type: 'deleteSession', clientId };
}

function ids(ops: StorageOp[]): string[] {
  return ops.map((o) => (o.type === 'deleteSession' ? o.clientId : '?'));
}

describe('WriteQueue', () => {
  it('submits within the window are committed in one commit, in submit order', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 5 });
    await Promise.all([q.submit([op('a'), op('b')]), q.submit([op('c')]), q.submit([]), q.submit([op('d')])]);
    assert.equal(b.commits.length, 1);
    assert.deepEqual(ids(b.commits[0]!), ['a', 'b', 'c', 'd']);
  });

  it('a submission waits at most maxDelayMs before its group starts', TIMEOUT, async (t) => {
    mock.timers.enable({ apis: ['setTimeout'] });
    t.after(() => mock.timers.reset());
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 2 });
    const done = q.submit([op('a')]);
    mock.timers.tick(1);
    assert.equal(b.commits.length, 0, 'still inside the window');
    void q.submit([op('b')]);
    mock.timers.tick(1);
    assert.equal(b.commits.length, 1, 'committed when the window of the first submission closes');
    assert.deepEqual(ids(b.commits[0]!), ['a', 'b']);
    await done;
  });

  it('a group starts at once when maxOps ops are pending', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 60_000, maxOps: 3 });
    void q.submit([op('a')]);
    assert.equal(b.commits.length, 0);
    await q.submit([op('b'), op('c')]);
    assert.deepEqual(ids(b.commits[0]!), ['a', 'b', 'c']);
  });

  it('groups hold whole submissions and at most maxOps ops; a larger submission commits alone', TIMEOUT, async () => {
    const b = new FakeBackend();
    const q = new WriteQueue(b, { maxDelayMs: 1, maxOps: 4 });
    const first = q.submit([op('x')]);
    await b.untilCommits(1);
    // Queued behind the commit in progress.
    const rest = [
      q.submit([op('a1'), op('a2')]),
      q.submit([op('b1'), op('b2'), op('b3')]),
      q.submit([op('c1'), op('c2'), op('c3'), op('c4'), op('c5')]),
      q.submit([op('d1')]),
    ];
    b.resolveNext();
    await first;
    for (let n = 2; n <= 5; n++) {
      await b.untilCommits(n);
      b.resolveNext();
    }
    await Promise.all(rest);
    assert.deepEqual(
      b.commits.map(ids),
      [['x'], ['a1', 'a2'], ['b1', 'b2', 'b3'], ['c1', 'c2', 'c3', 'c4', 'c5'], ['d1']],
    );
  });

  it('commits never overlap: submissions made during a commit form the next group', TIMEOUT, async () => {
    const b = new FakeBackend();
    const q = new WriteQueue(b, { maxDelayMs: 1 });
    const a = q.submit([op('a')]);
    await b.untilCommits(1);
    const more = [q.submit([op('b')]), q.submit([op('c')])];
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.equal(b.commits.length, 1, 'the next group waits for the commit in progress');
    b.resolveNext();
    await a;
    await b.untilCommits(2);
    assert.deepEqual(ids(b.commits[1]!), ['b', 'c']);
    b.resolveNext();
    await Promise.all(more);
    assert.equal(b.maxActive, 1);
  });

  it('a failed group is retried one submission at a time, so only the failing caller rejects', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = { failClient: 'bad' };
    const q = new WriteQueue(b, { maxDelayMs: 5 });
    const results = await Promise.allSettled([q.submit([op('a')]), q.submit([op('bad')]), q.submit([op('c')])]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.ok(isTernError((results[1] as PromiseRejectedResult).reason, 'ERR_STORAGE_INVALID_OP'));
    assert.deepEqual(b.commits.map(ids), [['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
  });

  it('a submission committed alone rejects with the backend error', TIMEOUT, async () => {
    const b = new FakeBackend();
    const q = new WriteQueue(b, { maxDelayMs: 1 });
    const p = q.submit([op('a')]);
    await b.untilCommits(1);
    const err = ternError('ERR_STORAGE_WRITE', 'disk full');
    b.rejectNext(err);
    await assert.rejects(p, (e) => e === err);
  });

  it('flush commits pending ops without waiting for the window; close refuses later submits', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 60_000 });
    const p = q.submit([op('a')]);
    assert.equal(q.pendingOps, 1);
    await q.flush();
    await p;
    assert.equal(b.commits.length, 1);
    assert.equal(q.pendingOps, 0);
    const last = q.submit([op('b')]);
    await q.close();
    await last;
    assert.deepEqual(b.commits.map(ids), [['a'], ['b']]);
    await assert.rejects(q.submit([op('c')]), (e) => isTernError(e, 'ERR_STORAGE_CLOSED'));
  });
});

it('compactOps cancels an outbound entry written and deleted in one group, and its unreferenced message', () => {
  const message = { id: 7, topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false, createdAt: 1 };
  const other = { ...message, id: 8 };
  const ops: StorageOp[] = [
    { type: 'putMessage', message },
    { type: 'putOutbound', clientId: 'a', entry: { seq: 1, messageId: 7, qos: 1, state: 'sent', packetId: 1 } },
    { type: 'putMessage', message: other },
    { type: 'putOutbound', clientId: 'b', entry: { seq: 1, messageId: 8, qos: 1, state: 'queued' } },
    { type: 'deleteOutbound', clientId: 'a', seq: 1 },
    // A new entry that reuses the key after the delete must stay.
    { type: 'putOutbound', clientId: 'a', entry: { seq: 1, messageId: 8, qos: 1, state: 'queued' } },
  ];
  const out = compactOps(ops);
  assert.deepEqual(out.map((o) => o.type), ['putMessage', 'putOutbound', 'deleteOutbound', 'putOutbound']);
  assert.equal(out[0]!.type === 'putMessage' && out[0]!.message.id, 8);
  // Nothing to cancel: the very same array comes back.
  const plain = ops.slice(0, 4);
  assert.equal(compactOps(plain), plain);
});
