/**
 * Durable storage across restarts (SQLite backend): persistent sessions
 * [MQTT-3.1.2-4/5], their subscriptions, queued and in-flight QoS 1/2
 * messages [MQTT-4.4.0-1], inbound QoS 2 state (exactly once [MQTT-4.3.3])
 * and retained messages [MQTT-3.3.1-5] come back after the broker restarts,
 * whether it was shut down (SIGTERM), crashed (SIGKILL) or closed and
 * recreated in-process; clean sessions [MQTT-3.1.2-6] and expired v5
 * sessions do not. Also: a corrupt data file and a data directory in use
 * stop the start-up with a clear error.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { connect, type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt';
import { type Broker, createBroker } from '../../src/broker/broker.js';
import type { StorageOp } from '../../src/persistence/persistence.js';
import { SqlitePersistence } from '../../src/persistence/sqlite.js';
import { isMosquitto } from '../helpers/broker.js';
import { BrokerExitError, BrokerProcess, stablePort } from '../helpers/broker-process.js';
import { clientId, connectMqtt, MessageCollector, within } from '../helpers/mqtt-client.js';
import * as P from '../helpers/packets.js';
import { RawClient } from '../helpers/raw-client.js';

const skip = isMosquitto ? 'Tern storage: not applicable to mosquitto' : false;
const T = { timeout: 90_000, skip };

/** What the shared scenarios need from a broker they can restart. */
interface Restartable {
  readonly port: number;
  readonly url: string;
  restart(): Promise<void>;
}

/** Tern in this process on a fixed port and data dir; restart = close() + a new createBroker(). */
class InProcessBroker implements Restartable {
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  broker: Broker | null = null;

  constructor(port: number, dataDir: string) {
    this.port = port;
    this.url = `mqtt://127.0.0.1:${port}`;
    this.dataDir = dataDir;
  }

  static async start(t: TestContext): Promise<InProcessBroker> {
    const dir = await tempDir(t);
    const b = new InProcessBroker(await stablePort(), join(dir, 'data'));
    t.after(() => b.stop());
    await b.start();
    return b;
  }

  async start(): Promise<void> {
    const broker = createBroker({
      listeners: [{ type: 'tcp', host: '127.0.0.1', port: this.port }],
      storage: { backend: 'sqlite', path: this.dataDir },
      log: { level: 'silent' },
    });
    await broker.listen();
    this.broker = broker;
  }

  async stop(): Promise<void> {
    const broker = this.broker;
    this.broker = null;
    await broker?.close();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }
}

type Mode = 'SIGTERM' | 'SIGKILL' | 'in-process';
const MODES: readonly Mode[] = ['SIGTERM', 'SIGKILL', 'in-process'];

async function brokerFor(t: TestContext, mode: Mode): Promise<Restartable> {
  if (mode === 'in-process') return InProcessBroker.start(t);
  const proc = await BrokerProcess.start(t);
  return { port: proc.port, url: proc.url, restart: () => proc.restart({ crash: mode === 'SIGKILL' }) };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-storage-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An MQTT.js client (3.1.1, no reconnect) and its first CONNACK; ended in t.after. */
async function connectWithConnack(
  t: TestContext,
  url: string,
  opts: IClientOptions,
  collect = false,
): Promise<{ client: MqttClient; connack: IConnackPacket; messages: MessageCollector | undefined }> {
  const client = connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts });
  t.after(() => client.endAsync(true).catch(() => {}));
  // Attach the collector before CONNACK: queued messages follow it at once.
  const messages = collect ? new MessageCollector(client) : undefined;
  const connack = await within(
    new Promise<IConnackPacket>((resolve, reject) => {
      client.once('connect', resolve);
      client.once('error', reject);
    }),
    10_000,
    'MQTT.js client did not connect',
  );
  return { client, connack, messages };
}

for (const mode of MODES) {
  test(`after a restart (${mode}) a persistent session is present, keeps its subscription, gets the QoS 1/2 messages queued while it was offline; retained messages stay, a clean session is gone [MQTT-3.1.2-4, MQTT-3.1.2-5, MQTT-3.1.2-6, MQTT-3.3.1-5]`, T, async (t) => {
    const b = await brokerFor(t, mode);
    const subId = clientId('store-sub');
    const cleanId = clientId('store-clean');

    // A persistent subscriber, offline while messages are published.
    const first = await connectWithConnack(t, b.url, { clientId: subId, clean: false });
    assert.equal(first.connack.sessionPresent, false);
    assert.deepEqual((await first.client.subscribeAsync('store/q/#', { qos: 2 })).map((g) => g.qos), [2]);
    await first.client.endAsync();

    // A clean-session client, subscribed and connected when the broker goes down.
    const clean = await connectWithConnack(t, b.url, { clientId: cleanId, clean: true });
    await clean.client.subscribeAsync('store/clean', { qos: 1 });

    const pub = await connectMqtt(t, b.url);
    await pub.publishAsync('store/retained/a', 'kept', { qos: 1, retain: true });
    await pub.publishAsync('store/retained/b', 'cleared later', { qos: 1, retain: true });
    await pub.publishAsync('store/retained/b', '', { qos: 1, retain: true }); // [MQTT-3.3.1-10] clears it
    await pub.publishAsync('store/q/a', 'one', { qos: 1 });
    await pub.publishAsync('store/q/b', 'two', { qos: 2 });
    await pub.publishAsync('store/q/a', 'three', { qos: 1 });
    await pub.endAsync();

    await b.restart();

    const back = await connectWithConnack(t, b.url, { clientId: subId, clean: false }, true);
    assert.equal(back.connack.sessionPresent, true, 'the persistent session survived the restart');
    const queued = await back.messages!.waitFor(3, 10_000);
    // MQTT.js hands QoS 2 messages over at PUBREL, so order is only comparable within a QoS.
    assert.deepEqual(
      queued.filter((m) => m.qos === 1).map((m) => m.payload),
      ['one', 'three'],
    );
    assert.deepEqual(
      queued.filter((m) => m.qos === 2).map((m) => [m.topic, m.payload]),
      [['store/q/b', 'two']],
    );

    // The stored subscription still routes new messages (no re-subscribe).
    const pub2 = await connectMqtt(t, b.url);
    await pub2.publishAsync('store/q/c', 'after restart', { qos: 1 });
    const all = await back.messages!.waitForPayload('after restart', 10_000);
    assert.equal(all.length, 4, `no duplicates of the queued messages: ${JSON.stringify(all)}`);

    // Retained: 'a' kept; 'b' was cleared, so the first message on b is a live one.
    const watcher = await connectWithConnack(t, b.url, { clientId: clientId('store-watch'), clean: true }, true);
    await watcher.client.subscribeAsync('store/retained/a', { qos: 1 });
    const [retained] = await watcher.messages!.waitFor(1, 10_000);
    assert.deepEqual([retained?.topic, retained?.payload, retained?.retain], ['store/retained/a', 'kept', true]);
    await watcher.client.subscribeAsync('store/retained/b', { qos: 1 });
    await pub2.publishAsync('store/retained/b', 'live', { qos: 1 });
    const [, second] = await watcher.messages!.waitFor(2, 10_000);
    assert.deepEqual([second?.payload, second?.retain], ['live', false], 'the cleared retained message stayed cleared');

    // The clean session did not outlive its connection, restart or not.
    const cleanBack = await connectWithConnack(t, b.url, { clientId: cleanId, clean: false });
    assert.equal(cleanBack.connack.sessionPresent, false, 'a clean session is not stored');
  });
}

for (const mode of MODES) {
  test(`after a restart (${mode}) unacknowledged outbound QoS 1/2 messages are resent (PUBLISH with DUP, PUBREL) in order, and a QoS 2 message awaiting PUBREL is not delivered twice [MQTT-4.4.0-1, MQTT-4.3.3-2]`, T, async (t) => {
    const b = await brokerFor(t, mode);
    const subId = clientId('store-inflight');
    const receiverId = clientId('store-once-sub');
    const pubId = clientId('store-once-pub');

    const sub = await RawClient.connected(b.port, t, { clientId: subId, clean: false });
    sub.send(P.subscribe(1, [{ filter: 'inflight/#', qos: 2 }]));
    assert.deepEqual((await sub.expectPacket('suback')).granted, [2]);
    const receiver = await RawClient.connected(b.port, t, { clientId: receiverId, clean: false });
    receiver.send(P.subscribe(1, [{ filter: 'once/#', qos: 2 }]));
    assert.deepEqual((await receiver.expectPacket('suback')).granted, [2]);

    const pub = await connectMqtt(t, b.url);
    await pub.publishAsync('inflight/q1', 'a', { qos: 1 });
    await pub.publishAsync('inflight/q2', 'b', { qos: 2 });
    const a = await sub.expectPacket('publish');
    assert.deepEqual([a.payload.toString(), a.qos, a.dup], ['a', 1, false]);
    const bMsg = await sub.expectPacket('publish');
    assert.deepEqual([bMsg.payload.toString(), bMsg.qos], ['b', 2]);
    sub.send(P.pubrec(bMsg.id!));
    assert.equal((await sub.expectPacket('pubrel')).id, bMsg.id); // sent once the PUBREL state is stored
    // No PUBACK for 'a', no PUBCOMP for 'b'.

    // Inbound QoS 2: PUBLISH id 7 acknowledged with PUBREC, PUBREL not sent yet.
    const publisher = await RawClient.connected(b.port, t, { clientId: pubId, clean: false });
    publisher.send(P.publish({ topic: 'once/t', payload: 'exactly once', qos: 2, id: 7 }));
    assert.equal((await publisher.expectPacket('pubrec')).id, 7);
    const firstCopy = await receiver.expectPacket('publish');
    assert.equal(firstCopy.payload.toString(), 'exactly once');
    receiver.send(P.pubrec(firstCopy.id!));
    assert.equal((await receiver.expectPacket('pubrel')).id, firstCopy.id);
    receiver.send(P.pubcomp(firstCopy.id!));

    await b.restart();
    for (const c of [sub, publisher, receiver]) await c.expectClose(10_000).catch(() => c.close());

    const sub2 = await RawClient.connect(b.port, t);
    assert.equal((await sub2.handshake({ clientId: subId, clean: false }, 10_000)).sessionPresent, true);
    const resent = await sub2.expectPacket('publish', 10_000);
    assert.deepEqual([resent.payload.toString(), resent.qos, resent.dup, resent.id], ['a', 1, true, a.id]);
    assert.equal((await sub2.expectPacket('pubrel', 10_000)).id, bMsg.id, 'PUBREL resent, not the PUBLISH');
    sub2.send(P.puback(a.id!), P.pubcomp(bMsg.id!));

    const receiver2 = await RawClient.connect(b.port, t);
    assert.equal((await receiver2.handshake({ clientId: receiverId, clean: false }, 10_000)).sessionPresent, true);
    const publisher2 = await RawClient.connect(b.port, t);
    assert.equal((await publisher2.handshake({ clientId: pubId, clean: false }, 10_000)).sessionPresent, true);
    // The publisher did not see PUBREL go through: it resends the PUBLISH with DUP [MQTT-4.4.0-1].
    publisher2.send(P.publish({ topic: 'once/t', payload: 'exactly once', qos: 2, id: 7, dup: true }));
    assert.equal((await publisher2.expectPacket('pubrec', 10_000)).id, 7);
    publisher2.send(P.pubrel(7));
    assert.equal((await publisher2.expectPacket('pubcomp', 10_000)).id, 7);
    // Id 7 is free again: a new message with it is a new message.
    publisher2.send(P.publish({ topic: 'once/t', payload: 'next', qos: 2, id: 7 }));
    assert.equal((await publisher2.expectPacket('pubrec', 10_000)).id, 7);
    // The receiver's PUBCOMP may not have been processed or stored before the restart: then
    // the broker resends PUBREL for it, which is allowed; a second PUBLISH of it is not.
    let next = await receiver2.next(10_000, 'PUBLISH next');
    if (next.type === 'pubrel' && next.id === firstCopy.id) {
      receiver2.send(P.pubcomp(firstCopy.id!));
      next = await receiver2.next(10_000, 'PUBLISH next');
    }
    assert.equal(next.type, 'publish', JSON.stringify(next));
    assert.equal(next.type === 'publish' && next.payload.toString(), 'next', 'the resent QoS 2 PUBLISH was not routed a second time');
  });
}

test('a v5 session with session expiry 2 s is gone after a restart once 2 s have passed; one with 300 s is present', T, async (t) => {
  const b = await BrokerProcess.start(t);
  const shortId = clientId('store-exp2');
  const longId = clientId('store-exp300');
  const v5 = (id: string, expiry: number): IClientOptions => ({
    protocolVersion: 5,
    clientId: id,
    clean: false,
    properties: { sessionExpiryInterval: expiry },
  });
  for (const [id, expiry] of [[shortId, 2], [longId, 300]] as const) {
    const c = await connectWithConnack(t, b.url, v5(id, expiry));
    await c.client.subscribeAsync('expiry/t', { qos: 1 });
    await c.client.endAsync();
  }
  const disconnectedAt = Date.now();
  assert.equal(await b.stop(), 0);
  // The expiry interval is the subject here: let it run out while the broker is down.
  const left = disconnectedAt + 2500 - Date.now();
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
  await b.start();

  const short = await connectWithConnack(t, b.url, v5(shortId, 2));
  assert.equal(short.connack.sessionPresent, false, 'the 2 s session expired while the broker was down');
  const long = await connectWithConnack(t, b.url, v5(longId, 300));
  assert.equal(long.connack.sessionPresent, true, 'the 300 s session is still there');
});

test('a corrupt data file stops the start-up with an error naming the file; --repair moves it aside and starts empty', T, async (t) => {
  const b = await BrokerProcess.create(t);
  await mkdir(b.dataDir, { recursive: true });
  const dbFile = join(b.dataDir, 'tern.db');
  const garbage = Buffer.from('this is not an SQLite database, just garbage bytes\n'.repeat(200));
  await writeFile(dbFile, garbage);

  const refused = await b.runToExit();
  assert.equal(refused.code, 1, refused.output);
  assert.ok(refused.output.includes(dbFile), `the error names the file: ${refused.output}`);
  assert.match(refused.output, /corrupt/i);
  assert.doesNotMatch(refused.output, /\n\s+at /, 'one message, no stack trace');
  assert.deepEqual(await readFile(dbFile), garbage, 'a refused start leaves the file alone');

  await b.start(['--repair']);
  const aside = (await readdir(b.dataDir)).filter((f) => f.startsWith('tern.db.corrupt-'));
  assert.equal(aside.length, 1, `one file moved aside: ${aside.join(', ')}`);
  assert.deepEqual(await readFile(join(b.dataDir, aside[0]!)), garbage, 'the corrupt file is kept, byte for byte');
  const c = await connectWithConnack(t, b.url, { clientId: clientId('store-repaired'), clean: false });
  assert.equal(c.connack.sessionPresent, false);
  await c.client.subscribeAsync('repaired/t', { qos: 1 });
  await c.client.endAsync();
  // The fresh store is a working store: the session survives the next restart.
  await b.restart();
  const again = await connectWithConnack(t, b.url, { clientId: c.client.options.clientId!, clean: false });
  assert.equal(again.connack.sessionPresent, true);
});

test('in-process: listen() rejects ERR_STORAGE_CORRUPT naming the file; with repair: true it starts', T, async (t) => {
  const dir = await tempDir(t);
  const dbFile = join(dir, 'tern.db');
  await writeFile(dbFile, Buffer.alloc(8192, 0x5a));
  const options = {
    listeners: [{ type: 'tcp' as const, host: '127.0.0.1', port: 0 }],
    storage: { backend: 'sqlite' as const, path: dir },
    log: { level: 'silent' as const },
  };
  const broken = createBroker(options);
  t.after(() => broken.close());
  await assert.rejects(broken.listen(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'ERR_STORAGE_CORRUPT');
    assert.ok(err.message.includes(dbFile), err.message);
    return true;
  });
  const repaired = createBroker({ ...options, repair: true });
  t.after(() => repaired.close());
  await repaired.listen();
  assert.ok((await readdir(dir)).some((f) => f.startsWith('tern.db.corrupt-')));
  assert.ok(existsSync(dbFile));
});

test('with repair, a database damaged after a clean shutdown is checked and moved aside', T, async (t) => {
  const dir = await tempDir(t);
  const store = new SqlitePersistence({ path: dir });
  await store.open();
  const now = Date.now();
  const ops: StorageOp[] = [];
  for (let i = 1; i <= 3000; i++) {
    ops.push({ type: 'putRetained', message: { id: i, topic: `damaged/${i}`, payload: Buffer.alloc(100, 1), qos: 0, retain: true, createdAt: now } });
  }
  await store.commit(ops);
  await store.close(); // clean: start-up skips quick_check
  // Damage pages in the middle of the file (bit rot, a bad disk, a stray write).
  const dbFile = join(dir, 'tern.db');
  const size = (await stat(dbFile)).size;
  const fh = await open(dbFile, 'r+');
  await fh.write(Buffer.alloc(32 * 1024, 0x41), 0, 32 * 1024, Math.floor(size / 2 / 4096) * 4096);
  await fh.close();

  const broker = createBroker({
    listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'sqlite', path: dir },
    log: { level: 'silent' },
    repair: true,
  });
  t.after(() => broker.close());
  await broker.listen();
  assert.ok((await readdir(dir)).some((f) => f.startsWith('tern.db.corrupt-')), 'the damaged file was moved aside');
});

test('a second broker process on the same data directory refuses to start (exit 1, lock in use); the first keeps serving', T, async (t) => {
  const first = await BrokerProcess.start(t);
  const second = await BrokerProcess.create(t, { dataDir: first.dataDir, port: first.port });
  const r = await second.runToExit();
  assert.equal(r.code, 1, r.output);
  assert.match(r.output, /in use|lock/i);
  assert.ok(r.output.includes(String(first.pid)), `names the holder's pid ${first.pid}: ${r.output}`);
  assert.ok(r.output.includes(join(first.dataDir, 'tern.lock')), r.output);

  const c = await connectWithConnack(t, first.url, { clientId: clientId('store-first'), clean: false });
  assert.equal(c.connack.sessionPresent, false);
  // The lock was not disturbed: a clean shutdown releases it and a restart works.
  assert.equal(await first.stop(), 0);
  await first.start();
  await assert.rejects(second.start(), (err: unknown) => err instanceof BrokerExitError && err.exitCode === 1);
});

test('in-process: a second broker on the same data directory is refused with ERR_STORAGE_LOCKED', T, async (t) => {
  const dir = await tempDir(t);
  const options = {
    listeners: [{ type: 'tcp' as const, host: '127.0.0.1', port: 0 }],
    storage: { backend: 'sqlite' as const, path: dir },
    log: { level: 'silent' as const },
  };
  const first = createBroker(options);
  t.after(() => first.close());
  await first.listen();
  const second = createBroker(options);
  t.after(() => second.close());
  await assert.rejects(second.listen(), { code: 'ERR_STORAGE_LOCKED' });
  await first.close();
  const third = createBroker(options);
  t.after(() => third.close());
  await third.listen(); // released by close()
});

test('wills: a crash publishes the wills of clients connected at the time (at the restart); a clean shutdown does not [MQTT-3.1.2-8]', T, async (t) => {
  const b = await BrokerProcess.start(t);
  const will = (name: string): IClientOptions['will'] => ({ topic: `wills/${name}`, payload: Buffer.from(`${name} gone`), qos: 1, retain: true });
  await connectWithConnack(t, b.url, { clientId: clientId('store-will-term'), clean: false, will: will('term') });
  assert.equal(await b.stop(), 0);
  await b.start();
  await connectWithConnack(t, b.url, { clientId: clientId('store-will-kill'), clean: false, will: will('kill') });
  await b.restart({ crash: true });

  const watcher = await connectWithConnack(t, b.url, { clientId: clientId('store-will-watch'), clean: true }, true);
  await watcher.client.subscribeAsync('wills/#', { qos: 1 });
  const [got] = await watcher.messages!.waitFor(1, 10_000);
  assert.deepEqual([got?.topic, got?.payload, got?.retain], ['wills/kill', 'kill gone', true]);
  // Only that one: a marker published now arrives next.
  await watcher.client.publishAsync('wills/marker', 'marker', { qos: 1 });
  const [, marker] = await watcher.messages!.waitFor(2, 10_000);
  assert.equal(marker?.payload, 'marker', 'no will from the client connected at the clean shutdown');
});

for (const mode of ['SIGTERM', 'SIGKILL'] as const) {
  test(`after a restart (${mode}) an offline session is still checked against the ACL as its user: a message it may not read is not queued for it`, T, async (t) => {
    const dir = await tempDir(t);
    const acl = join(dir, 'acl');
    // alice may read a/# except a/secret/#; pub may write a/#. The subscription to a/# is allowed
    // (the deny only overlaps it) and the deny is enforced per message at delivery.
    await writeFile(acl, 'user alice\ntopic read a/#\ntopic deny a/secret/#\n\nuser pub\ntopic write a/#\n');
    const b = await BrokerProcess.start(t, { toml: `[auth]\nacl_file = ${JSON.stringify(acl)}\n` });
    const alice = { clientId: clientId('store-acl-alice'), clean: false, username: 'alice' };
    const first = await connectWithConnack(t, b.url, alice);
    await first.client.subscribeAsync('a/#', { qos: 1 });
    await first.client.endAsync();
    await b.restart({ crash: mode === 'SIGKILL' });

    // Restored, alice's session has no connection yet: deliveries to it are checked as alice.
    const pub = await connectWithConnack(t, b.url, { clientId: clientId('store-acl-pub'), clean: true, username: 'pub' });
    await pub.client.publishAsync('a/secret/x', 'secret', { qos: 1 });
    await pub.client.publishAsync('a/open/x', 'open', { qos: 1 });
    const back = await connectWithConnack(t, b.url, alice, true);
    assert.equal(back.connack.sessionPresent, true);
    const [got] = await back.messages!.waitFor(1, 10_000);
    assert.deepEqual([got?.topic, got?.payload], ['a/open/x', 'open'], 'a/secret/x was not queued for alice');
  });
}
