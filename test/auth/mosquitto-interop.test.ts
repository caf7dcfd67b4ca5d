/**
 * Interop with the real Debian mosquitto tools: files made by mosquitto_passwd
 * verify with our reader, and files made by `tern passwd` authenticate
 * against a real mosquitto broker.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { PasswordFile } from '../../src/auth/password-file.js';
import { runPasswd } from '../../src/cli/passwd.js';
import { freePort } from '../helpers/net.js';

function hasBinary(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}
const HAVE_PASSWD = hasBinary('mosquitto_passwd');
const HAVE_BROKER = hasBinary('mosquitto') && hasBinary('mosquitto_pub');

function run(cmd: string, args: string[], timeoutMs = 10_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-mosq-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const quiet = (): { stdin: PassThrough; stdout: Writable; stderr: Writable } => {
  const sink = (): Writable => new Writable({ write: (_c, _e, cb) => cb() });
  return { stdin: new PassThrough(), stdout: sink(), stderr: sink() };
};

/** Start mosquitto with `conf`; resolves once it logs that it is running. Killed in t.after. */
async function startMosquitto(t: TestContext, dir: string, confLines: string[]): Promise<number> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    [`listener ${port} 127.0.0.1`, 'persistence false', 'log_dest stderr', `user ${userInfo().username}`, ...confLines, ''].join('\n'),
  );
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mosquitto did not start:\n${log}`)), 5_000);
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      if (/mosquitto version \S+ running/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`mosquitto exited with ${code}:\n${log}`));
    });
  });
  return port;
}

function pub(port: number, user: string, password: string): Promise<{ code: number; stderr: string }> {
  return run('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', password, '-t', 'tern/test', '-m', 'x', '-q', '1']);
}

describe('mosquitto_passwd → PasswordFile', { skip: !HAVE_PASSWD && 'mosquitto_passwd not installed', timeout: 20_000 }, () => {
  it('verifies a $7$ (default) entry made by mosquitto_passwd -c -b', async (t) => {
    const file = join(await tempDir(t), 'pw');
    assert.equal((await run('mosquitto_passwd', ['-c', '-b', file, 'alice', 'wonder land'])).code, 0);
    assert.match(await readFile(file, 'utf8'), /^alice:\$7\$101\$/);
    const pf = await PasswordFile.load(file);
    assert.equal(await pf.verify('alice', 'wonder land'), true);
    assert.equal(await pf.verify('alice', 'wonderland'), false);
  });

  it('verifies a $6$ entry made by mosquitto_passwd -H sha512', async (t) => {
    const file = join(await tempDir(t), 'pw');
    assert.equal((await run('mosquitto_passwd', ['-c', '-b', file, 'alice', 'a'])).code, 0);
    assert.equal((await run('mosquitto_passwd', ['-H', 'sha512', '-b', file, 'bob', 'builder'])).code, 0);
    assert.match(await readFile(file, 'utf8'), /^bob:\$6\$/m);
    const pf = await PasswordFile.load(file);
    assert.equal(pf.size, 2);
    assert.equal(await pf.verify('bob', 'builder'), true);
    assert.equal(await pf.verify('bob', 'Builder'), false);
    assert.equal(await pf.verify('alice', 'a'), true);
  });

  it('lets mosquitto_passwd update a file written by tern passwd (same line format)', async (t) => {
    const file = join(await tempDir(t), 'pw');
    assert.equal(await runPasswd(['-c', '-b', file, 'carol', 'c'], quiet()), 0);
    assert.equal((await run('mosquitto_passwd', ['-b', file, 'dave', 'd'])).code, 0);
    const pf = await PasswordFile.load(file);
    assert.equal(await pf.verify('carol', 'c'), true);
    assert.equal(await pf.verify('dave', 'd'), true);
  });
});

describe('tern passwd → real mosquitto broker', { skip: !HAVE_BROKER && 'mosquitto not installed', timeout: 30_000 }, () => {
  it('authenticates users from a file written by runPasswd, and refuses wrong passwords', async (t) => {
    const dir = await tempDir(t);
    const file = join(dir, 'pw');
    assert.equal(await runPasswd(['-c', '-b', file, 'carol', 'pa ss:w0rd'], quiet()), 0);
    assert.equal(await runPasswd(['-b', '-I', '1000', file, 'dave', 'other'], quiet()), 0); // update path, custom iterations
    assert.equal(await runPasswd(['-H', 'sha512', '-b', file, 'erin', 'legacy'], quiet()), 0);
    await chmod(dir, 0o755); // mosquitto may drop privileges; the file itself stays 0600 and ours

    const port = await startMosquitto(t, dir, [`password_file ${file}`, 'allow_anonymous false']);

    const ok = await pub(port, 'carol', 'pa ss:w0rd');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await pub(port, 'dave', 'other')).code, 0);
    assert.equal((await pub(port, 'erin', 'legacy')).code, 0);

    const bad = await pub(port, 'carol', 'wrong');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /not authori[sz]ed/i);
    assert.notEqual((await pub(port, 'nobody', 'pa ss:w0rd')).code, 0);
  });
});
