/**
 * The crash test of the durable-storage issue: Tern runs as a child process
 * on SQLite while publishers send numbered QoS 1 and QoS 2 messages to
 * persistent-session subscribers, and is SIGKILLed at random points several
 * times, each time restarted on the same data directory and port. Clients
 * reconnect by themselves (MQTT.js, clean session 0, fixed client ids); two
 * subscribers are offline for part of the run, so their messages wait in the
 * broker's queues (and store) across kills.
 *
 * A message counts as acknowledged when its MQTT.js publish callback
 * succeeded (PUBACK / PUBCOMP from the broker). After a final clean restart
 * and a drain, the test requires:
 * - every acknowledged message delivered to every subscriber: at least once
 *   for QoS 1, exactly once for QoS 2 (no duplicates) [MQTT-4.3.2, MQTT-4.3.3];
 * - first deliveries in publish order per publisher and topic [MQTT-4.6.0-6];
 * - every reconnect of a persistent client finding its session [MQTT-3.2.2-2];
 * - the retained message of each publisher being its last one [MQTT-3.3.1-5].
 *
 * TERN_CRASH_SEED=n replays a run's random choices (kill points, topics);
 * TERN_CRASH_KILLS=n changes the number of kills (default 5).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import { connect, type IClientOptions, type IPublishPacket, type MqttClient, Store, UniqueMessageIdProvider } from 'mqtt';
import { isMosquitto } from '../helpers/broker.js';
import { BrokerProcess } from '../helpers/broker-process.js';
import { within } from '../helpers/mqtt-client.js';

const SEED = envInt('TERN_CRASH_SEED') ?? Math.floor(Math.random() * 2 ** 31);
const KILLS = envInt('TERN_CRASH_KILLS') ?? 5;
/** Messages per second each publisher aims for (catching up after an outage within its window). */
const RATE = 120;
/** Unacknowledged messages per publisher. */
const WINDOW = 40;
/** Every RETAIN_EVERY-th message of a publisher is followed by a retained one. */
const RETAIN_EVERY = 25;
/** Messages per stream published after the final restart (they prove the subscriptions still route). */
const FINAL_PER_STREAM = 5;
/** v5 reason code Packet Identifier not found. */
const PACKET_ID_NOT_FOUND = 0x92;

const skip = isMosquitto ? 'Tern storage: not applicable to mosquitto' : false;

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got '${raw}'`);
  return n;
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Condition waits: re-checked whenever something happens (notify), bounded. */
class Waiter {
  #wake: (() => void) | null = null;

  notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async until(cond: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
      await new Promise<void>((resolve) => {
        // The interval is a fallback only; every message and ack calls notify().
        const timer = setTimeout(resolve, Math.min(left, 250));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
}

interface Stream {
  topic: string;
  qos: 1 | 2;
  next: number;
}

interface Acked {
  topic: string;
  seq: number;
  qos: 1 | 2;
}

/** Records the CONNACKs of a persistent client: all but its very first must say session present. */
class SessionLog {
  readonly name: string;
  connacks = 0;
  readonly lost: number[] = [];

  constructor(name: string) {
    this.name = name;
  }

  watch(client: MqttClient): void {
    client.on('packetreceive', (packet) => {
      if (packet.cmd !== 'connack') return;
      this.connacks++;
      if (this.connacks > 1 && packet.sessionPresent !== true) this.lost.push(this.connacks);
    });
  }
}

class Publisher {
  readonly name: string;
  readonly client: MqttClient;
  readonly streams: Stream[];
  readonly retainedTopic: string;
  readonly session: SessionLog;
  readonly acked: Acked[] = [];
  readonly errors: string[] = [];
  /** True between 'connect' (stored messages resent) and 'close'; publishing only then keeps MQTT.js's id handling simple. */
  ready = false;
  outstanding = 0;
  issued = 0;
  lastRetained = '';
  lastRetainedAcked = '';
  /** QoS 2 publishes completed by a PUBCOMP 0x92 after a reconnect (see #send). */
  recoveredPubcomps = 0;
  readonly #waiter: Waiter;
  #rr = 0;

  constructor(url: string, name: string, opts: IClientOptions, waiter: Waiter) {
    this.name = name;
    this.#waiter = waiter;
    this.streams = [
      { topic: `crash/q1/${name}/a`, qos: 1, next: 1 },
      { topic: `crash/q1/${name}/b`, qos: 1, next: 1 },
      { topic: `crash/q2/${name}`, qos: 2, next: 1 },
    ];
    this.retainedTopic = `retained/${name}`;
    this.session = new SessionLog(name);
    this.client = connect(url, { ...opts, messageIdProvider: new UniqueMessageIdProvider() });
    this.session.watch(this.client);
    this.client.on('connect', () => {
      this.ready = true;
      waiter.notify();
    });
    this.client.on('close', () => {
      this.ready = false;
    });
    this.client.on('error', () => {}); // reconnects are expected
  }

  /** Issue up to `budget` messages while the window has room. */
  publish(budget: number): void {
    while (this.ready && budget-- > 0 && this.outstanding < WINDOW) {
      const stream = this.streams[this.#rr++ % this.streams.length]!;
      const seq = stream.next++;
      this.#send(stream.topic, `${this.name}:${seq}`, stream.qos, false, { topic: stream.topic, seq, qos: stream.qos });
      if (++this.issued % RETAIN_EVERY === 0) {
        const payload = `${this.name}:${this.issued}`;
        this.lastRetained = payload;
        this.#send(this.retainedTopic, payload, 1, true, null);
      }
    }
  }

  #send(topic: string, payload: string, qos: 1 | 2, retain: boolean, record: Acked | null): void {
    this.outstanding++;
    const connacks = this.session.connacks;
    this.client.publish(topic, payload, { qos, retain }, (err) => {
      this.outstanding--;
      if (!err) {
        if (record !== null) this.acked.push(record);
        else this.lastRetainedAcked = payload;
      } else if (qos === 2 && (err as { code?: unknown }).code === PACKET_ID_NOT_FOUND && this.session.connacks > connacks) {
        // PUBCOMP 0x92 to a PUBREL resent after a reconnect: the broker released the id before
        // the crash (its PUBCOMP was lost with the connection). "Not an error during recovery"
        // (MQTT 5 §3.7.2.1), though MQTT.js reports it as one. The PUBREL followed a PUBREC,
        // so the broker had accepted the message: it counts as acknowledged.
        this.recoveredPubcomps++;
        if (record !== null) this.acked.push(record);
      } else {
        this.errors.push(`${topic} ${payload}: ${err.message}`);
      }
      this.#waiter.notify();
    });
  }
}

class Subscriber {
  readonly name: string;
  readonly session: SessionLog;
  /** topic -> seq -> deliveries. */
  readonly counts = new Map<string, Map<number, number>>();
  /** topic -> seqs in order of first delivery. */
  readonly firstOrder = new Map<string, number[]>();
  readonly wrongQos: string[] = [];
  deliveries = 0;
  client: MqttClient | null = null;
  readonly #url: string;
  readonly #opts: IClientOptions;
  readonly #waiter: Waiter;
  readonly #onMessage = (topic: string, payload: Buffer, packet: IPublishPacket): void => {
    const seq = Number(payload.toString().split(':')[1]);
    const expectedQos = topic.startsWith('crash/q2/') ? 2 : 1;
    if (packet.qos !== expectedQos) this.wrongQos.push(`${topic} ${seq} qos ${packet.qos}`);
    let counts = this.counts.get(topic);
    if (counts === undefined) this.counts.set(topic, (counts = new Map()));
    const n = counts.get(seq) ?? 0;
    counts.set(seq, n + 1);
    if (n === 0) {
      let order = this.firstOrder.get(topic);
      if (order === undefined) this.firstOrder.set(topic, (order = []));
      order.push(seq);
    }
    this.deliveries++;
    this.#waiter.notify();
  };

  constructor(url: string, name: string, opts: IClientOptions, waiter: Waiter) {
    this.name = name;
    this.session = new SessionLog(name);
    this.#url = url;
    // One incoming store across client objects: a QoS 2 message that got PUBREC before the
    // client went offline is handed over when its PUBREL comes, whichever object receives it.
    this.#opts = { ...opts, incomingStore: new Store({ clean: false }) };
    this.#waiter = waiter;
  }

  delivered(topic: string, seq: number): number {
    return this.counts.get(topic)?.get(seq) ?? 0;
  }

  /** Connects (a new MQTT.js client for the same session) and waits for the CONNACK. */
  async online(): Promise<MqttClient> {
    const client = connect(this.#url, this.#opts);
    this.client = client;
    this.session.watch(client);
    client.on('message', this.#onMessage);
    await within(
      new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      }),
      30_000,
      `${this.name} did not connect`,
    );
    client.on('error', () => {}); // reconnects are expected
    return client;
  }

  /** Disconnects cleanly (DISCONNECT); the broker keeps the session and queues for it. */
  async offline(): Promise<void> {
    const client = this.client;
    this.client = null;
    await client?.endAsync().catch(() => {});
  }
}

test(`crash test: SIGKILL ${KILLS} times under QoS 1/2 load loses no acknowledged message and duplicates no QoS 2 message (seed ${SEED})`, { timeout: 180_000, skip }, async (t: TestContext) => {
  const random = prng(SEED);
  t.diagnostic(`seed ${SEED} (replay with TERN_CRASH_SEED=${SEED})`);
  const broker = await BrokerProcess.start(t, {
    durability: 'normal',
    // Nothing may be dropped for a queue limit while subscribers are away.
    toml: '[limits]\nmax_queued = 1000000\n',
  });
  const waiter = new Waiter();
  const tag = `${process.pid}`;
  const common: IClientOptions = {
    clean: false,
    reconnectPeriod: 100,
    connectTimeout: 5000,
    resubscribe: false, // the broker must remember the subscriptions
    keepalive: 30,
  };
  const v4: IClientOptions = { ...common, protocolVersion: 4 };
  const v5: IClientOptions = { ...common, protocolVersion: 5, properties: { sessionExpiryInterval: 3600 } };

  // ---- subscribers first, so every published message has its readers ----
  const subscribers = [
    new Subscriber(broker.url, 'always', { ...v4, clientId: `crash-sub-always-${tag}` }, waiter),
    new Subscriber(broker.url, 'v5-away', { ...v5, clientId: `crash-sub-v5-away-${tag}` }, waiter),
    new Subscriber(broker.url, 'long-away', { ...v4, clientId: `crash-sub-long-away-${tag}` }, waiter),
  ];
  t.after(() => Promise.all(subscribers.map((s) => s.client?.endAsync(true).catch(() => {}))));
  const [always, v5Away, longAway] = subscribers as [Subscriber, Subscriber, Subscriber];
  for (const s of subscribers) await s.online();
  await always.client!.subscribeAsync('crash/#', { qos: 2 });
  await v5Away.client!.subscribeAsync({ 'crash/q1/#': { qos: 1 }, 'crash/q2/#': { qos: 2 } });
  await longAway.client!.subscribeAsync('crash/#', { qos: 2 });

  const publishers = [
    new Publisher(broker.url, 'p0', { ...v4, clientId: `crash-pub-0-${tag}` }, waiter),
    new Publisher(broker.url, 'p1', { ...v5, clientId: `crash-pub-1-${tag}` }, waiter),
    new Publisher(broker.url, 'p2', { ...v4, clientId: `crash-pub-2-${tag}` }, waiter),
  ];
  t.after(() => Promise.all(publishers.map((p) => p.client.endAsync(true).catch(() => {}))));
  await waiter.until(() => publishers.every((p) => p.ready), 30_000, () => 'publishers to connect');

  // ---- load: paced publishing, driven by a timer until stopped ----
  let publishing = true;
  const started = Date.now();
  const pacer = setInterval(() => {
    if (!publishing) return;
    const target = Math.floor(((Date.now() - started) * RATE) / 1000);
    for (const p of publishers) p.publish(Math.min(WINDOW, target - p.issued));
  }, 20);
  t.after(() => clearInterval(pacer));

  /** Waits `ms` while the load runs (the wait is the point: kill at a random moment). */
  const run = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
  const ackedNow = (): number => publishers.reduce((n, p) => n + p.acked.length, 0);

  let kills = 0;
  const killLog: string[] = [];
  for (let k = 1; k <= KILLS; k++) {
    await run(300 + random() * 3500);
    // Offline phases: v5-away is away from kill 2 to kill 4, long-away from kill 1 to the end.
    if (k === 1) await longAway.offline();
    if (k === 2) await v5Away.offline();
    if (k === 4) await v5Away.online();
    // Sometimes kill while the clients are still resending after the previous restart.
    if (k > 1 && random() < 0.3) await waiter.until(() => publishers.some((p) => p.ready), 30_000, () => 'a publisher back');
    const before = ackedNow();
    await broker.kill();
    kills++;
    killLog.push(`kill ${k} at ${((Date.now() - started) / 1000).toFixed(1)} s, ${before} acked`);
    await broker.start();
  }

  // Let the publishers catch up a bit after the last crash, then stop and restart cleanly.
  await waiter.until(() => publishers.every((p) => p.ready), 30_000, () => 'publishers to reconnect after the last kill');
  await run(500);
  publishing = false;
  clearInterval(pacer);
  assert.equal(await broker.stop(), 0, `clean shutdown: ${broker.output().slice(-2000)}`);
  await broker.start();
  await longAway.online();

  // Messages after the final restart: the stored subscriptions must still route them.
  await waiter.until(() => publishers.every((p) => p.ready), 30_000, () => 'publishers to reconnect after the clean restart');
  for (const p of publishers) p.publish(FINAL_PER_STREAM * p.streams.length);

  // ---- drain: every publish acknowledged, every acknowledged message delivered ----
  const missingFor = (s: Subscriber): Acked[] => {
    const out: Acked[] = [];
    for (const p of publishers) for (const a of p.acked) if (s.delivered(a.topic, a.seq) === 0) out.push(a);
    return out;
  };
  try {
    await waiter.until(
      () => publishers.every((p) => p.outstanding === 0) && subscribers.every((s) => missingFor(s).length === 0),
      60_000,
      () =>
        `the drain: outstanding ${publishers.map((p) => `${p.name}=${p.outstanding}`).join(' ')}; missing ${subscribers
          .map((s) => `${s.name}=${missingFor(s).length} ${JSON.stringify(missingFor(s).slice(0, 3))}`)
          .join(' ')}`,
    );
  } catch (err) {
    t.diagnostic(`broker output (tail): ${broker.output().slice(-3000)}`);
    throw err;
  }

  // ---- figures ----
  const acked = publishers.flatMap((p) => p.acked);
  const ackedQos1 = acked.filter((a) => a.qos === 1).length;
  const ackedQos2 = acked.length - ackedQos1;
  let duplicatesQos1 = 0;
  let duplicatesQos2 = 0;
  const qos2Duplicates: string[] = [];
  for (const s of subscribers) {
    for (const a of acked) {
      const n = s.delivered(a.topic, a.seq);
      if (n <= 1) continue;
      if (a.qos === 1) duplicatesQos1 += n - 1;
      else {
        duplicatesQos2 += n - 1;
        qos2Duplicates.push(`${s.name}: ${a.topic} #${a.seq} x${n}`);
      }
    }
  }
  const deliveries = subscribers.reduce((n, s) => n + s.deliveries, 0);
  t.diagnostic(killLog.join('; '));
  t.diagnostic(
    `kills ${kills}, broker starts ${broker.starts}, messages acked ${acked.length} (QoS 1 ${ackedQos1}, QoS 2 ${ackedQos2}), ` +
      `deliveries ${deliveries} (${subscribers.map((s) => `${s.name} ${s.deliveries}`).join(', ')}), ` +
      `duplicates QoS 1 ${duplicatesQos1}, QoS 2 ${duplicatesQos2}, publish errors ${publishers.reduce((n, p) => n + p.errors.length, 0)}, ` +
      `PUBCOMP 0x92 after reconnect ${publishers.reduce((n, p) => n + p.recoveredPubcomps, 0)}, ` +
      `reconnects ${[...publishers, ...subscribers].map((c) => `${c.name} ${c.session.connacks}`).join(', ')}`,
  );

  // ---- verdicts ----
  assert.ok(acked.length > 0 && kills === KILLS);
  for (const s of subscribers) assert.deepEqual(missingFor(s), [], `${s.name} got every acknowledged message`);
  assert.deepEqual(qos2Duplicates, [], 'no QoS 2 message delivered twice');
  for (const s of subscribers) {
    assert.deepEqual(s.wrongQos, [], `${s.name}: delivered at the granted QoS`);
    const disorder: string[] = [];
    for (const [topic, order] of s.firstOrder) {
      for (let i = 1; i < order.length; i++) {
        if (order[i]! <= order[i - 1]!) disorder.push(`${topic}: #${order[i]} after #${order[i - 1]}`);
      }
    }
    assert.deepEqual(disorder.slice(0, 10), [], `${s.name}: first deliveries in publish order per publisher and topic`);
  }
  for (const c of [...publishers, ...subscribers]) {
    assert.deepEqual(c.session.lost, [], `${c.name}: every reconnect found the session (CONNACK numbers without it listed)`);
  }
  for (const p of publishers) assert.deepEqual(p.errors, [], `${p.name}: no publish refused`);

  // Retained messages: each publisher's last one, intact.
  const expected = new Map(publishers.filter((p) => p.lastRetained !== '').map((p) => [p.retainedTopic, p.lastRetained]));
  for (const p of publishers) if (p.lastRetained !== '') assert.equal(p.lastRetainedAcked, p.lastRetained);
  const reader = connect(broker.url, { protocolVersion: 4, clean: true, reconnectPeriod: 0, clientId: `crash-retained-${tag}` });
  t.after(() => reader.endAsync(true).catch(() => {}));
  const retained = new Map<string, string>();
  reader.on('message', (topic, payload, packet) => {
    if (packet.retain) retained.set(topic, payload.toString());
    waiter.notify();
  });
  await within(new Promise<void>((resolve) => reader.once('connect', () => resolve())), 10_000, 'retained reader did not connect');
  await reader.subscribeAsync('retained/+', { qos: 1 });
  await waiter.until(() => retained.size >= expected.size, 10_000, () => `retained messages (${JSON.stringify([...retained])})`);
  assert.deepEqual(retained, expected);
});
