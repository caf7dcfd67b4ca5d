/**
 * The `tern` executable end to end: spawned as a real process (through tsx),
 * checked by exit code and output.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connectAsync } from 'mqtt';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');

function startTern(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

async function runTern(args: string[], timeoutMs = 15_000): Promise<Result> {
  const child = startTern(args);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-cli-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('check-config on a valid file prints "FILE: ok" and exits 0', { timeout: 20_000 }, async (t) => {
  const file = join(await tempDir(t), 'good.toml');
  await writeFile(file, '[limits]\nmax_inflight = 10\n');
  const r = await runTern(['check-config', '-c', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${file}: ok\n`);
});

test('check-config on an invalid file exits 1 naming file, line and key', { timeout: 20_000 }, async (t) => {
  const file = join(await tempDir(t), 'bad.toml');
  await writeFile(file, '# comment\n[[listeners]]\nport = "x"\n');
  const r = await runTern(['check-config', '-c', file]);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.ok(r.stderr.includes(`${file}:3: listeners[0].port: expected an integer between 0 and 65535, got "x"`), r.stderr);
});

test('check-config on the shipped example file passes', { timeout: 20_000 }, async () => {
  const r = await runTern(['check-config', '-c', join(ROOT, 'config.example.toml')]);
  assert.equal(r.code, 0, r.stderr);
});

test('--help prints usage and exits 0; --version prints the package version', { timeout: 20_000 }, async () => {
  const help = await runTern(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage:\n {2}tern \[broker\]/);
  assert.match(help.stdout, /check-config/);
  const version = await runTern(['--version']);
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
});

test('an unknown flag is a usage error: message plus usage on stderr, exit 2', { timeout: 20_000 }, async () => {
  const r = await runTern(['--no-such-flag']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /invalid command line: .*--no-such-flag/);
  assert.match(r.stderr, /Usage:/);
});

test('a bad config at startup prints the error without a stack trace and exits 1', { timeout: 20_000 }, async (t) => {
  const file = join(await tempDir(t), 'bad.toml');
  await writeFile(file, '[limits]\nmax_inflght = 5\n');
  const r = await runTern(['-c', file, '-p', '0']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad\.toml:2: limits\.max_inflght: unknown key; did you mean max_inflight\?/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('passwd hands its arguments to the password-file tool', { timeout: 20_000 }, async (t) => {
  const file = join(await tempDir(t), 'passwd');
  const r = await runTern(['passwd', '-c', '-b', file, 'alice', 'secret']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(await readFile(file, 'utf8'), /^alice:\$7\$/m);
});

/** Start `tern -c (memory storage) -p 0` and wait for the startup line; returns the bound port. */
async function startBroker(t: TestContext): Promise<{ child: ChildProcess; port: number; exited: Promise<[number | null, NodeJS.Signals | null]>; stderr: () => string }> {
  const file = join(await tempDir(t), 'mem.toml');
  await writeFile(file, '[storage]\nbackend = "memory"\n[log]\nformat = "json"\n');
  const child = startTern(['-c', file, '-p', '0']);
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const entry = JSON.parse(line) as { msg?: string; addresses?: Array<{ port: number }> };
      const bound = entry.addresses?.[0]?.port;
      if (entry.msg?.includes(' started') && bound !== undefined) {
        // The human-readable message carries the port too, not just the structured field.
        if (entry.msg.includes(`tcp://127.0.0.1:${bound}`)) resolve(bound);
        else reject(new Error(`startup line lacks the bound address: ${line}`));
      }
    });
    void exited.then(([code]) => reject(new Error(`tern exited with ${code} before starting: ${stderr}`)));
  });
  return { child, port, exited, stderr: () => stderr };
}

test('the broker starts on -p 0, logs the bound port, serves MQTT and exits 0 on SIGTERM', { timeout: 30_000 }, async (t) => {
  const { child, port, exited, stderr } = await startBroker(t);
  assert.ok(port > 0);
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5000 }, false);
  t.after(() => client.endAsync(true).catch(() => {}));
  const got = new Promise<string>((resolve) => client.once('message', (_topic, payload) => resolve(payload.toString())));
  await client.subscribeAsync('cli/test', { qos: 1 });
  await client.publishAsync('cli/test', 'hello', { qos: 1 });
  assert.equal(await got, 'hello');
  await client.endAsync();

  child.kill('SIGTERM');
  const [code, signal] = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, stderr());
});

test(
  'SIGTERM with a client still connected closes it and exits 0 promptly',
  { timeout: 30_000 },
  async (t) => {
    const { child, port, exited, stderr } = await startBroker(t);
    const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 5000 }, false);
    t.after(() => client.endAsync(true).catch(() => {}));
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    child.kill('SIGTERM');
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('tern did not exit within 5 s')), 5000).unref());
    const [code, signal] = await Promise.race([exited, timeout]);
    assert.equal(signal, null);
    assert.equal(code, 0, stderr());
    await clientClosed;
  },
);
