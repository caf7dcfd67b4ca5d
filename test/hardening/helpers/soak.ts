/**
 * The soak run, shared by `npm run soak` (scripts/soak.ts, minutes to hours)
 * and its CI-size variant in `npm test` (test/hardening/soak.test.ts, ~20 s).
 *
 * Against a broker child process (SQLite store, inspector on), all at once:
 * - paced QoS 1 publishers (3.1.1 and v5), a QoS 2 publisher (v5) and a
 *   QoS 0 publisher;
 * - persistent subscribers (3.1.1 and v5, QoS 1 and QoS 2) that go offline
 *   for a second every few seconds, so their messages queue and are resent;
 * - retained messages overwritten on a fixed set of topics, and fresh
 *   clients checking that the whole set comes back on subscribe;
 * - client churn: clients that connect with a will, publish, and leave,
 *   half with DISCONNECT (no will), half by dropping the socket (will sent to
 *   a watcher);
 * - every `sampleMs`: the broker's RSS (/proc), its live heap after a full
 *   GC (inspector) and its file descriptors.
 *
 * At the end the publishers stop, the subscribers come back and drain, and
 * the run is judged: RSS and heap flat after the warm-up (the first quarter,
 * at least 5 s), no error lines in the broker's log, every acknowledged
 * QoS 1/2 message delivered to every persistent subscriber (QoS 2 exactly
 * once), every will delivered, every retained check complete, SIGTERM exits 0.
 */
import { BrokerProcess, type AfterHooks } from '../../helpers/broker-process.js';
import { Inspector } from './inspector.js';
import { accepted, LoadClient } from './load-client.js';
import { fdCount, mib, MiB, rssBytes } from './proc.js';

export interface SoakOptions {
  /** How long the load runs, milliseconds. */
  durationMs: number;
  /** Memory sampling period, milliseconds; default 2000. */
  sampleMs?: number;
  /** QoS 1 messages per second, per QoS 1 publisher; default 300. */
  rate?: number;
  /** Where progress lines go. */
  report: (line: string) => void;
}

export interface SoakSample {
  seconds: number;
  rss: number;
  heap: number;
  fds: number;
}

export interface SoakResult {
  samples: SoakSample[];
  /** Acknowledged QoS 1/2 messages, and how many each persistent subscriber is missing. */
  acknowledged: number;
  missing: Record<string, number>;
  qos2Duplicates: number;
  willsExpected: number;
  willsReceived: number;
  retainedChecks: number;
  retainedIncomplete: number;
  churnCycles: number;
  errorLines: string[];
  exitCode: number | null;
  /** Growth after the warm-up (last third's median minus the warm-up's end), bytes. */
  heapGrowth: number;
  rssGrowth: number;
  /** Everything that failed; empty when the run passed. */
  problems: string[];
}

const RETAINED_TOPICS = 50;
const CHURN_SLOTS = 20;
const SUBSCRIBERS: ReadonlyArray<{ id: string; version: 4 | 5; qos: 1 | 2 }> = [
  { id: 'soak-sub-v311-q1', version: 4, qos: 1 },
  { id: 'soak-sub-v5-q1', version: 5, qos: 1 },
  { id: 'soak-sub-v5-q2', version: 5, qos: 2 },
];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A persistent subscriber that goes offline now and then; remembers every tag it got. */
class Subscriber {
  readonly got = new Map<string, number>();
  readonly #held = new Set<number>();
  #client: LoadClient | null = null;
  #running = true;
  #loop: Promise<void> = Promise.resolve();

  constructor(
    readonly port: number,
    readonly id: string,
    readonly version: 4 | 5,
    readonly qos: 1 | 2,
  ) {}

  /** Create the session and its subscription, then start going offline and back every `onlineMs`. */
  async start(onlineMs: number): Promise<void> {
    const c = await this.#connect();
    await c.subscribe([{ filter: 'soak/q/#', qos: this.qos }]);
    await c.end();
    this.#loop = this.#run(onlineMs).catch((err: unknown) => {
      this.error = `${this.id}: ${String(err)}`;
    });
  }

  /** Why its offline/online loop stopped early, if it did. */
  error: string | undefined = undefined;

  async #connect(): Promise<LoadClient> {
    const c = await LoadClient.connect({
      port: this.port,
      clientId: this.id,
      version: this.version,
      clean: false,
      ...(this.version === 5 ? { sessionExpiry: 3600 } : {}),
      qos2Held: this.#held,
      onMessage: (p) => {
        const tag = p.payload.toString();
        this.got.set(tag, (this.got.get(tag) ?? 0) + 1);
      },
    });
    this.#client = c;
    return c;
  }

  async #run(onlineMs: number): Promise<void> {
    let n = 0;
    while (this.#running) {
      const c = await this.#connect();
      await sleep(onlineMs);
      // Alternately a clean DISCONNECT and a dropped connection: in-flight messages are resent either way.
      if (n++ % 2 === 0) await c.end();
      else {
        c.destroy();
        await c.closed;
      }
      if (this.#running) await sleep(1000);
    }
  }

  /** Stop going offline; come back online and stay. */
  async settle(): Promise<void> {
    this.#running = false;
    await this.#loop;
    await this.#connect();
  }

  close(): void {
    this.#client?.destroy();
  }
}

/** Paced publishing of numbered messages; tags of the acknowledged ones. */
class Publisher {
  readonly acked = new Set<string>();
  refused = 0;
  sent = 0;
  readonly #timer: NodeJS.Timeout;
  #stopping = false;

  constructor(
    readonly client: LoadClient,
    readonly qos: 0 | 1 | 2,
    perSecond: number,
  ) {
    client.onAck = ({ code, tag }) => {
      if (accepted(code)) this.acked.add(tag as string);
      else this.refused++;
    };
    const perTick = Math.max(1, Math.round(perSecond / 20));
    this.#timer = setInterval(() => {
      if (this.#stopping || client.isClosed || client.inflight > 2000) return;
      for (let i = 0; i < perTick; i++) {
        const tag = `${client.clientId}-${this.sent++}`;
        client.publish(qos === 0 ? 'soak/q0/x' : `soak/q/${qos}`, tag, qos, tag);
      }
    }, 50);
  }

  /** Stop and wait for the last answers. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    const deadline = Date.now() + 15_000;
    while (this.client.inflight > 0 && !this.client.isClosed && Date.now() < deadline) await sleep(50);
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

export async function runSoak(hooks: AfterHooks, opts: SoakOptions): Promise<SoakResult> {
  const { durationMs, report } = opts;
  const sampleMs = opts.sampleMs ?? 2000;
  const rate = opts.rate ?? 300;
  const broker = await BrokerProcess.start(hooks, {
    backend: 'sqlite',
    nodeArgs: ['--inspect=127.0.0.1:0'],
    toml: '[limits]\nmax_queued = 1000000\n',
  });
  const port = broker.port;
  const pid = broker.pid!;
  const inspector = await Inspector.attach(() => broker.output());
  const closers: Array<() => void> = [];
  hooks.after(() => closers.forEach((c) => c()));
  hooks.after(() => inspector.close());
  const problems: string[] = [];
  /** Loops of the load that stopped on an error (each is reported as a problem). */
  const crashed = (what: string) => (err: unknown): void => {
    problems.push(`${what} stopped: ${String(err)}`);
  };

  // Persistent subscribers first, so every message published from now on is theirs.
  const subscribers = SUBSCRIBERS.map((s) => new Subscriber(port, s.id, s.version, s.qos));
  closers.push(() => subscribers.forEach((s) => s.close()));
  await Promise.all(subscribers.map((s) => s.start(4000)));

  const willWatcher = await LoadClient.connect({ port, clientId: 'soak-will-watcher', version: 5 });
  let willsReceived = 0;
  willWatcher.onMessage = () => willsReceived++;
  await willWatcher.subscribe([{ filter: 'soak/will/#', qos: 1 }]);
  const q0Sink = await LoadClient.connect({ port, clientId: 'soak-q0-sink', version: 4 });
  await q0Sink.subscribe([{ filter: 'soak/q0/#', qos: 0 }]);
  closers.push(() => [willWatcher, q0Sink].forEach((c) => c.destroy()));

  const publishers = [
    new Publisher(await LoadClient.connect({ port, clientId: 'soak-pub-v311-q1', version: 4 }), 1, rate),
    new Publisher(await LoadClient.connect({ port, clientId: 'soak-pub-v5-q1', version: 5 }), 1, rate),
    new Publisher(await LoadClient.connect({ port, clientId: 'soak-pub-v5-q2', version: 5 }), 2, rate / 2),
    new Publisher(await LoadClient.connect({ port, clientId: 'soak-pub-q0', version: 4 }), 0, rate * 2),
  ];
  closers.push(() => publishers.forEach((p) => p.client.destroy()));

  let running = true;
  // Retained: overwrite the set of topics in turn; a fresh client checks that the whole set comes back.
  const retainer = await LoadClient.connect({ port, clientId: 'soak-retainer', version: 5 });
  closers.push(() => retainer.destroy());
  for (let k = 0; k < RETAINED_TOPICS; k++) await retainer.publishAcked(`soak/retained/${k}`, `v0-${k}`, 1, true);
  let retainedChecks = 0;
  let retainedIncomplete = 0;
  const retainedLoop = (async () => {
    for (let round = 1; running; round++) {
      for (let k = 0; k < RETAINED_TOPICS && running; k++) {
        retainer.publish(`soak/retained/${k}`, `v${round}-${k}`, 1, undefined, true);
        await sleep(20);
      }
      let seen = 0;
      const checker = await LoadClient.connect({ port, clientId: `soak-retained-check-${round}`, version: 4, onMessage: (p) => (seen += p.retain ? 1 : 0) });
      await checker.subscribe([{ filter: 'soak/retained/#', qos: 0 }]);
      const deadline = Date.now() + 3000;
      while (seen < RETAINED_TOPICS && Date.now() < deadline) await sleep(20);
      retainedChecks++;
      if (seen !== RETAINED_TOPICS) retainedIncomplete++;
      await checker.end();
    }
  })().catch(crashed('the retained checks'));

  // Churn with wills.
  let churnCycles = 0;
  let willsExpected = 0;
  const churnLoops = Array.from({ length: CHURN_SLOTS }, async (_, i) => {
    for (let n = 0; running; n++) {
      const c = await LoadClient.connect({
        port,
        clientId: `soak-churn-${i}`,
        version: 5,
        will: { topic: `soak/will/${i}`, payload: `will-${i}-${n}`, qos: 1 },
      });
      await c.subscribe([{ filter: `soak/churn/${i}`, qos: 1 }]);
      await c.publishAcked(`soak/churn/${i}`, `c-${n}`, 1);
      await sleep(100 + ((i * 37 + n * 11) % 200));
      if (n % 2 === 0) await c.end();
      else {
        willsExpected++;
        c.destroy();
        await c.closed;
      }
      churnCycles++;
    }
  }).map((loop, i) => loop.catch(crashed(`churn slot ${i}`)));

  // Sampling.
  const samples: SoakSample[] = [];
  const t0 = performance.now();
  const sample = async (): Promise<void> => {
    const r = await inspector.reading();
    const s = { seconds: (performance.now() - t0) / 1000, rss: rssBytes(pid), heap: r.heapUsed + r.arrayBuffers, fds: fdCount(pid) };
    samples.push(s);
    const acked = publishers.reduce((n, p) => n + p.acked.size, 0);
    report(`${s.seconds.toFixed(0).padStart(5)} s  rss ${mib(s.rss).padStart(10)}  heap ${mib(s.heap).padStart(10)}  fds ${String(s.fds).padStart(4)}  acked ${acked}  churn ${churnCycles}  wills ${willsReceived}/${willsExpected}`);
  };
  while (performance.now() - t0 < durationMs) {
    await sample();
    await sleep(Math.min(sampleMs, Math.max(0, durationMs - (performance.now() - t0))));
  }
  await sample();

  // Stop the load; everyone comes back and drains.
  running = false;
  await Promise.all(publishers.map((p) => p.stop()));
  await retainedLoop;
  await Promise.all(churnLoops);
  await Promise.all(subscribers.map((s) => s.settle()));
  const expected = new Map<string, 1 | 2>();
  for (const p of publishers) if (p.qos > 0) for (const tag of p.acked) expected.set(tag, p.qos as 1 | 2);
  const missingOf = (s: Subscriber): number => {
    let n = 0;
    for (const tag of expected.keys()) if (!s.got.has(tag)) n++;
    return n;
  };
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && (subscribers.some((s) => missingOf(s) > 0) || willsReceived < willsExpected)) await sleep(200);
  const missing: Record<string, number> = {};
  let qos2Duplicates = 0;
  for (const s of subscribers) {
    missing[s.id] = missingOf(s);
    if (s.qos === 2) for (const [tag, count] of s.got) if (expected.get(tag) === 2 && count > 1) qos2Duplicates++;
  }
  const refused = publishers.reduce((n, p) => n + p.refused, 0);
  for (const s of subscribers) if (s.error !== undefined) problems.push(`subscriber loop stopped: ${s.error}`);

  await inspector.close();
  const exitCode = await broker.stop();
  const errorLines = broker
    .output()
    .split('\n')
    .filter((l) => /"level":(50|60)/.test(l));

  // Flat after the warm-up: the last third's median against the sample at the end of the warm-up.
  const warmupEnd = Math.max(5, durationMs / 4000);
  const afterWarmup = samples.filter((s) => s.seconds >= warmupEnd);
  const base = afterWarmup[0] ?? samples[0]!;
  const tail = afterWarmup.slice(Math.floor((afterWarmup.length * 2) / 3));
  const heapGrowth = median(tail.map((s) => s.heap)) - base.heap;
  const rssGrowth = median(tail.map((s) => s.rss)) - base.rss;
  report(`after the warm-up (${warmupEnd.toFixed(0)} s): heap ${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)}, rss ${rssGrowth >= 0 ? '+' : ''}${mib(rssGrowth)} (last third's median vs the warm-up's end)`);
  report(
    `acknowledged ${expected.size} QoS 1/2 messages (${refused} refused); missing per subscriber ${JSON.stringify(missing)}; QoS 2 duplicates ${qos2Duplicates}; ` +
      `wills ${willsReceived}/${willsExpected}; retained checks ${retainedChecks - retainedIncomplete}/${retainedChecks} complete; churn cycles ${churnCycles}; exit ${exitCode}`,
  );

  if (heapGrowth > 8 * MiB) problems.push(`heap grew by ${mib(heapGrowth)} after the warm-up`);
  if (rssGrowth > 48 * MiB) problems.push(`RSS grew by ${mib(rssGrowth)} after the warm-up`);
  if (errorLines.length > 0) problems.push(`${errorLines.length} error lines in the broker log, first: ${errorLines[0]}`);
  for (const [id, n] of Object.entries(missing)) if (n > 0) problems.push(`${id} is missing ${n} acknowledged messages`);
  if (refused > 0) problems.push(`${refused} publishes refused`);
  if (qos2Duplicates > 0) problems.push(`${qos2Duplicates} QoS 2 messages delivered twice`);
  if (willsReceived !== willsExpected) problems.push(`wills: ${willsReceived} received, ${willsExpected} expected`);
  if (retainedIncomplete > 0) problems.push(`${retainedIncomplete} of ${retainedChecks} retained checks incomplete`);
  if (exitCode !== 0) problems.push(`SIGTERM exit code ${exitCode}`);
  if (expected.size === 0 || churnCycles === 0 || retainedChecks === 0) problems.push('the load did not run');

  return {
    samples,
    acknowledged: expected.size,
    missing,
    qos2Duplicates,
    willsExpected,
    willsReceived,
    retainedChecks,
    retainedIncomplete,
    churnCycles,
    errorLines,
    exitCode,
    heapGrowth,
    rssGrowth,
    problems,
  };
}
