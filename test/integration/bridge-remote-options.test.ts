/**
 * Remote connection options of the bridge, against real Tern remotes:
 * - the system trust store when no ca_file is given: a `tern bridge` child
 *   whose NODE_EXTRA_CA_CERTS names the test CA (the way Node extends its
 *   default store) connects; the same child without it refuses the server;
 * - username/password against a password file: the right credentials
 *   connect; wrong ones are refused (remoteDown with 0x86), retried with
 *   backoff, and the bridge connects once the remote accepts them;
 * - `verify = false`: connects to a server with a wrong host name or a
 *   self-signed certificate; with verification on it is refused.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { describe, it } from 'node:test';
import { hashPassword } from '../../src/auth/password-file.js';
import { createBridge, type Bridge, type BridgeOptions } from '../../src/bridge/bridge.js';
import { createBroker, type Broker, type BrokerOptions } from '../../src/broker/broker.js';
import { isTernError } from '../../src/errors.js';
import { startTern } from '../bridge/helpers/brokers.js';
import { ChildBridge } from '../bridge/helpers/child-bridge.js';
import { once } from '../bridge/helpers/setup.js';
import { checkDelivery, Collector, Publisher, sleep } from '../bridge/helpers/traffic.js';
import { makePki, type TestPki } from '../transport/certs.js';

interface Remote {
  broker: Broker;
  /** The TLS (or, without a certificate, TCP) listener the bridge connects to. */
  port: number;
  /** A plain TCP listener for the test's own clients. */
  plain: number;
}

/** A Tern remote: one listener for the bridge (TLS when `cert` is given) and a plain one for the collector. */
async function startRemote(t: TestContext, o: { cert?: string; key?: string; auth?: BrokerOptions['auth'] } = {}): Promise<Remote> {
  const bridgeListener =
    o.cert !== undefined
      ? { type: 'tls' as const, host: '127.0.0.1', port: 0, certFile: o.cert, keyFile: o.key! }
      : { type: 'tcp' as const, host: '127.0.0.1', port: 0 };
  const broker = createBroker({
    listeners: [bridgeListener, { type: 'tcp', host: '127.0.0.1', port: 0 }],
    storage: { backend: 'memory' },
    log: { level: 'silent' },
    // The refused bridge retries from 127.0.0.1: no address ban may cut the test short.
    bans: { maxFailures: 0 },
    ...(o.auth !== undefined ? { auth: o.auth } : {}),
  });
  const [a, b] = await broker.listen();
  t.after(() => broker.close());
  return { broker, port: a!.port, plain: b!.port };
}

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tern-bridge-remote-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function bridgeOf(t: TestContext, options: BridgeOptions): Bridge {
  const bridge = createBridge(options);
  t.after(() => bridge.close());
  return bridge;
}

const QUICK = { minDelayMs: 100, maxDelayMs: 400, factor: 2, jitter: 0 };

/** A self-signed server certificate for `selfsigned.example` (not issued by any CA). */
function selfSigned(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'self.crt');
  const key = join(dir, 'self.key');
  execFileSync(
    '/usr/bin/openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
      '-subj', '/CN=selfsigned.example', '-addext', 'subjectAltName=DNS:selfsigned.example'],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

describe('bridge: remote connection options', { timeout: 60_000 }, () => {
  it('trusts the system store by default (NODE_EXTRA_CA_CERTS extends it) and refuses a server it does not trust', async (t) => {
    const pki: TestPki = makePki(t);
    const remote = await startRemote(t, { cert: pki.serverCert, key: pki.serverKey });
    const local = await startTern();
    t.after(() => local.close());
    const collector = new Collector({ host: '127.0.0.1', port: remote.plain }, 'devices/#');
    await collector.connect('tern/bridge/+/state');
    t.after(() => collector.close());
    const dir = tempDir(t);
    const toml = (name: string): string => {
      const file = join(dir, `${name}.toml`);
      writeFileSync(
        file,
        [
          `name = "${name}"`,
          '[local]',
          'host = "127.0.0.1"',
          `port = ${local.port}`,
          '[remote]',
          'host = "localhost"',
          `port = ${remote.port}`,
          'reconnect = { min_delay_ms = 100, max_delay_ms = 300 }',
          // No ca_file: the system trust store.
          '[remote.tls]',
          'enabled = true',
          '[cache]',
          `dir = ${JSON.stringify(dir)}`,
          'durability = "normal"',
          '[log]',
          'level = "info"',
          'format = "json"',
          '[[forward]]',
          `local = "sensors/${name}/#"`,
          'remote_prefix = "devices/"',
          '',
        ].join('\n'),
      );
      return file;
    };
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;

    const trusting = new ChildBridge(toml('trusting'), { ...env, NODE_EXTRA_CA_CERTS: pki.caCert });
    t.after(() => trusting.stop('SIGKILL'));
    trusting.start();
    const up = await collector.until(() => collector.retained.get('tern/bridge/trusting/state') === 'online', 20_000);
    assert.ok(up, `the bridge trusting the test CA connected:\n${trusting.output}`);
    const pub = new Publisher(local, 'sensors/trusting/data');
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(20);
    assert.ok(await collector.until(() => collector.received.length >= 20, 5000));
    checkDelivery(pub.acked, collector.received, { maxDuplicates: 0 });

    const doubting = new ChildBridge(toml('doubting'), env);
    t.after(() => doubting.stop('SIGKILL'));
    doubting.start();
    const refused = await collector.until(() => /remote link down/.test(doubting.output), 20_000);
    assert.ok(refused, `the bridge without the test CA reported the refused link:\n${doubting.output}`);
    assert.match(doubting.output, /unable to (get local issuer|verify)|self[- ]signed|certificate/i);
    await sleep(300);
    assert.equal(collector.retained.get('tern/bridge/doubting/state'), undefined, 'never connected');
    assert.ok(doubting.running, 'it keeps retrying instead of exiting');
  });

  it('logs in with username/password; wrong credentials are refused, reported and retried with backoff', async (t) => {
    const dir = tempDir(t);
    const passwd = join(dir, 'passwd');
    writeFileSync(passwd, `edge:${await hashPassword('right')}\n`);
    const remote = await startRemote(t, { auth: { passwordFile: passwd, allowAnonymous: false } });
    const local = await startTern();
    t.after(() => local.close());
    // The collector logs in too (anonymous clients are refused).
    const collector = new Collector({ host: '127.0.0.1', port: remote.plain }, 'devices/#', undefined, { username: 'edge', password: 'right' });
    await collector.connect();
    t.after(() => collector.close());
    const base = (name: string, username: string, password: string): BridgeOptions => ({
      name,
      broker: local.broker!,
      remote: { host: '127.0.0.1', port: remote.port, username, password, reconnect: QUICK },
      cache: { dir, durability: 'normal' },
      forward: [{ local: `sensors/${name}/#`, remotePrefix: 'devices/' }],
    });

    const good = bridgeOf(t, base('good', 'edge', 'right'));
    const goodUp = once(good, 'remoteUp');
    await good.start();
    await goodUp;

    const bad = bridgeOf(t, base('bad', 'late', 'later')); // a user the remote does not know yet
    const downs: Array<Error | undefined> = [];
    bad.on('remoteDown', (err) => downs.push(err));
    // Every refused attempt, as the remote counts them (polled: the times are good to a few ms).
    const stats = remote.broker.core.stats;
    const attempts: number[] = [];
    let seen = stats.authFailures;
    const poll = setInterval(() => {
      for (; seen < stats.authFailures; seen++) attempts.push(Date.now());
    }, 2);
    t.after(() => clearInterval(poll));
    await bad.start();
    const pub = new Publisher(local, 'sensors/bad/data');
    await pub.connect();
    t.after(() => pub.close());
    await pub.burst(10); // cached while the remote refuses the bridge
    assert.ok(await collector.until(() => attempts.length >= 6, 10_000), `refused ${attempts.length} times`);
    clearInterval(poll);
    // Reported once per outage (not once per retry), with the reason.
    assert.equal(downs.length, 1);
    const err = downs[0];
    assert.ok(isTernError(err, 'ERR_CLIENT_CONNECT_REFUSED'), String(err));
    assert.equal(err.reasonCode, 0x86, 'bad user name or password');
    assert.equal(bad.stats().remote.state, 'down');
    assert.equal(bad.stats().remote.connects, 0);
    // Backoff: 100, 200, 400, 400, 400 ms (no jitter), never a tight loop; uncapped it would go on 800, 1600.
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
    assert.ok(gaps[0]! >= 80, `first retry after ${gaps[0]} ms`);
    assert.ok(gaps[1]! >= 180 && gaps[2]! >= 350, `the delay grew: ${gaps.join(', ')}`);
    assert.ok(gaps[3]! >= 350 && gaps[4]! >= 350 && gaps[4]! < 1200, `capped at max_delay_ms: ${gaps.join(', ')}`);
    assert.equal(bad.stats().backlog.messages, 10, 'the messages wait in the cache');

    // The remote learns the credentials (password file re-read): the next retry gets in and the backlog drains.
    writeFileSync(passwd, `edge:${await hashPassword('right')}\nlate:${await hashPassword('later')}\n`);
    await remote.broker.reload();
    await once(bad, 'remoteUp', 5000);
    assert.ok(await collector.until(() => collector.received.length >= 10, 5000));
    checkDelivery(pub.acked, collector.received, { maxDuplicates: 0 });
  });

  it('verify = false connects to a wrong host name and a self-signed certificate; with verification both are refused', async (t) => {
    const pki = makePki(t);
    const dir = tempDir(t);
    const self = selfSigned(dir);
    const wrongHost = await startRemote(t, { cert: pki.wrongHostCert, key: pki.wrongHostKey });
    const selfSignedRemote = await startRemote(t, { cert: self.cert, key: self.key });
    const local = await startTern();
    t.after(() => local.close());
    const cases = [
      { name: 'wronghost', port: wrongHost.port, caFile: pki.caCert, refusal: /altnames|host ?name|does not match/i },
      { name: 'selfsigned', port: selfSignedRemote.port, caFile: '', refusal: /self[- ]signed|unable to verify|local issuer/i },
    ];
    for (const c of cases) {
      const options = (verify: boolean): BridgeOptions => ({
        name: `${c.name}-${verify ? 'on' : 'off'}`,
        broker: local.broker!,
        remote: { host: '127.0.0.1', port: c.port, reconnect: QUICK, tls: { enabled: true, caFile: c.caFile, verify } },
        cache: { dir, durability: 'normal' },
        forward: [{ local: `sensors/${c.name}/#`, remotePrefix: 'devices/' }],
      });
      const checked = bridgeOf(t, options(true));
      const down = once<[Error | undefined]>(checked, 'remoteDown');
      await checked.start();
      const [err] = await down;
      assert.match(String(err?.message), c.refusal, `${c.name}: refused with verification`);

      const unchecked = bridgeOf(t, options(false));
      const up = once(unchecked, 'remoteUp');
      await unchecked.start();
      await up;
      assert.match(unchecked.stats().remote.description, /^mqtts:/);
      assert.equal(checked.stats().remote.state, 'down', `${c.name}: still refused`);
      assert.equal(checked.stats().remote.connects, 0);
    }
  });
});
