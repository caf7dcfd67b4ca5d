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

  it('a submission waits at most maxDelayMs, then its group starts after the waiting I/O is read', TIMEOUT, async (t) => {
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
    // The delay ran out; the group starts in this pass's check phase (setImmediate), after its I/O.
    assert.equal(b.commits.length, 0, 'not before the I/O already waiting is read');
    const late = q.submit([op('c')]);
    await new Promise((r) => setImmediate(r));
    assert.equal(b.commits.length, 1, 'committed once the window of the first submission closed');
    assert.deepEqual(ids(b.commits[0]!), ['a', 'b'], 'a submission made after the delay ran out waits for the next group');
    await done;
    mock.timers.tick(2);
    await late;
    assert.deepEqual(ids(b.commits[1]!), ['c']);
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

const message7 = { id: 7, topic: 't', payload: Buffer.from('x'), qos: 1 as const, retain: false, createdAt: 1 };
const message8 = { ...message7, id: 8 };

function put(clientId: string, seq: number, messageId: number, state: 'queued' | 'sent' | 'pubrel', packetId?: number): StorageOp {
  const entry = { seq, messageId, qos: 1 as const, state, ...(packetId === undefined ? {} : { packetId }) };
  return { type: 'putOutbound', clientId, entry };
}

function describeOps(ops: readonly StorageOp[]): string[] {
  return ops.map((o) => {
    switch (o.type) {
      case 'putMessage':
        return `msg ${o.message.id}`;
      case 'putOutbound':
        return `put ${o.clientId}/${o.entry.seq} ${o.entry.state}`;
      case 'deleteOutbound':
        return `del ${o.clientId}/${o.seq}`;
      case 'deleteSession':
        return `end ${o.clientId}`;
      default:
        return o.type;
    }
  });
}

it('compactOps moves a later state or delete of an outbound entry onto its first write, and drops unreferenced messages', () => {
  const ops: StorageOp[] = [
    { type: 'putMessage', message: message7 },
    put('a', 1, 7, 'queued'),
    { type: 'putMessage', message: message8 },
    put('b', 1, 8, 'queued'),
    { type: 'putMessage', message: message7 },
    put('a', 1, 7, 'sent', 1),
    { type: 'deleteOutbound', clientId: 'a', seq: 1 },
    // A new entry that reuses the key after the delete must stay.
    { type: 'putMessage', message: message8 },
    put('a', 1, 8, 'queued'),
    // b/1 moves to its sent state; repeated putMessage 8 is a no-op and goes.
    put('b', 1, 8, 'sent', 2),
  ];
  assert.deepEqual(describeOps(compactOps(ops)), ['del a/1', 'msg 8', 'put b/1 sent', 'put a/1 queued']);
  // Nothing to change: the very same array comes back.
  const plain = [ops[2]!, ops[3]!];
  assert.equal(compactOps(plain), plain);
});

it('compactOps cancels a fresh put and its delete outright', () => {
  const ops: StorageOp[] = [
    { type: 'putMessage', message: message7 },
    { ...put('a', 1, 7, 'queued'), fresh: true } as StorageOp,
    put('a', 1, 7, 'sent', 1),
    { type: 'deleteOutbound', clientId: 'a', seq: 1 },
    { type: 'deleteOutbound', clientId: 'a', seq: 2 },
  ];
  assert.deepEqual(describeOps(compactOps(ops)), ['del a/2']);
});

it('compactOps does not move an outbound op across a deleteSession of its client', () => {
  const ops: StorageOp[] = [
    { type: 'putMessage', message: message7 },
    put('a', 1, 7, 'queued'),
    { type: 'deleteSession', clientId: 'a' },
    { type: 'putSession', session: { clientId: 'a', protocolLevel: 5, expiryInterval: 60, disconnectedAt: null, createdAt: 1 } },
    { type: 'putMessage', message: message7 },
    put('a', 1, 7, 'sent', 1),
    { type: 'deleteOutbound', clientId: 'a', seq: 1 },
  ];
  assert.deepEqual(describeOps(compactOps(ops)), ['msg 7', 'put a/1 queued', 'end a', 'putSession', 'del a/1']);
});

describe('WriteQueue cancellation across submissions', () => {
  it('an entry acknowledged before its group starts is never written, and its publisher still waits for the group', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 5 });
    const settled: string[] = [];
    const publish = q.submit([{ type: 'putMessage', message: message7 }, put('s', 1, 7, 'sent', 1)]).then(() => settled.push('publish'));
    const ack = q.submit([{ type: 'deleteOutbound', clientId: 's', seq: 1 }]).then(() => settled.push('ack'));
    assert.equal(q.pendingOps, 2, 'the delete took the put\'s place');
    await Promise.all([publish, ack]);
    assert.deepEqual(b.commits.map(describeOps), [['del s/1']]);
    assert.deepEqual(settled, ['publish', 'ack']);
  });

  it('a fresh entry acknowledged before its group starts is never written nor deleted, and its PUBLISH resolves at once', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 60_000 });
    const fresh = { ...put('s', 1, 7, 'sent', 1), fresh: true } as StorageOp;
    const other = { ...put('t', 1, 8, 'sent', 1), fresh: true } as StorageOp;
    let published = false;
    const publish = q.submit([{ type: 'putMessage', message: message7 }, fresh]).then(() => (published = true));
    // A fan-out PUBLISH to two subscribers: it waits until both have acknowledged.
    let fannedOut = false;
    const fanout = q
      .submit([{ type: 'putMessage', message: message8 }, other, { type: 'putMessage', message: message8 }, { ...put('u', 1, 8, 'sent', 1), fresh: true } as StorageOp])
      .then(() => (fannedOut = true));
    const ack = q.submit([{ type: 'deleteOutbound', clientId: 's', seq: 1 }, { type: 'deleteOutbound', clientId: 't', seq: 1 }]);
    await publish;
    await ack;
    assert.equal(published, true);
    assert.equal(b.commits.length, 0, 'nothing was committed for them');
    await new Promise((r) => setImmediate(r));
    assert.equal(fannedOut, false, 'u has not acknowledged yet');
    await q.flush();
    await fanout;
    assert.deepEqual(b.commits.map(describeOps), [['msg 8', 'put u/1 sent']]);
  });

  it('a later state moves into the earlier submission, so the group holding it stores the newest state', TIMEOUT, async (t) => {
    mock.timers.enable({ apis: ['setTimeout'] });
    t.after(() => mock.timers.reset());
    const b = new FakeBackend();
    b.auto = {};
    const q = new WriteQueue(b, { maxDelayMs: 2 });
    const publish = q.submit([{ type: 'putMessage', message: message7 }, put('s', 1, 7, 'sent', 1)]);
    mock.timers.tick(2); // the publish's group is due; it starts after this pass's I/O
    // PUBREC read in that I/O: the entry moves on to 'pubrel' (submitted after the group became due).
    const pubrec = q.submit([put('s', 1, 7, 'pubrel', 1)]);
    await new Promise((r) => setImmediate(r));
    await publish;
    assert.deepEqual(b.commits.map(describeOps), [['msg 7', 'put s/1 pubrel']], 'no crash can leave the completed state behind');
    mock.timers.tick(2);
    await pubrec;
    assert.equal(b.commits.length, 1, 'a group left with nothing to do costs no commit');
  });

  it('ops of a group already started are not touched', TIMEOUT, async () => {
    const b = new FakeBackend();
    const q = new WriteQueue(b, { maxDelayMs: 1 });
    const publish = q.submit([{ type: 'putMessage', message: message7 }, put('s', 1, 7, 'sent', 1)]);
    await b.untilCommits(1);
    const ack = q.submit([{ type: 'deleteOutbound', clientId: 's', seq: 1 }]);
    b.resolveNext();
    await publish;
    await b.untilCommits(2);
    b.resolveNext();
    await ack;
    assert.deepEqual(b.commits.map(describeOps), [['msg 7', 'put s/1 sent'], ['del s/1']]);
  });

  it('a failed group retried per submission keeps the moves', TIMEOUT, async () => {
    const b = new FakeBackend();
    b.auto = { failClient: 'bad' };
    const q = new WriteQueue(b, { maxDelayMs: 5 });
    const results = await Promise.allSettled([
      q.submit([{ type: 'putMessage', message: message7 }, put('s', 1, 7, 'sent', 1)]),
      q.submit([op('bad')]),
      q.submit([{ type: 'deleteOutbound', clientId: 's', seq: 1 }]),
    ]);
    assert.deepEqual(results.map((r) => r.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.deepEqual(b.commits.map(describeOps), [['del s/1', 'end bad'], ['del s/1'], ['end bad']]);
  });
});
