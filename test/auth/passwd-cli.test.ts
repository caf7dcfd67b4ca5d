import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import { runPasswd, type PasswdIo } from '../../src/cli/passwd.js';
import { PasswordFile } from '../../src/auth/password-file.js';

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

function makeIo(input?: string): PasswdIo & { out: Capture; err: Capture } {
  const stdin = new PassThrough();
  if (input !== undefined) stdin.end(input);
  const out = new Capture();
  const err = new Capture();
  return { stdin, stdout: out, stderr: err, out, err };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tern-passwd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function load(file: string): Promise<PasswordFile> {
  return PasswordFile.load(file, { cacheTtlMs: 0 });
}

describe('tern passwd', { timeout: 20_000 }, () => {
  it('-c -b creates the file with one $7$ user, mode 0600', async (t) => {
    const file = join(await tempDir(t), 'pw');
    const io = makeIo();
    assert.equal(await runPasswd(['-c', '-b', file, 'alice', 'secret'], io), 0, io.err.text);
    const text = await readFile(file, 'utf8');
    assert.match(text, /^alice:\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==\n$/);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    const pf = await load(file);
    assert.equal(await pf.verify('alice', 'secret'), true);
    assert.equal(await pf.verify('alice', 'secrets'), false);
  });

  it('-c overwrites an existing file', async (t) => {
    const file = join(await tempDir(t), 'pw');
    await writeFile(file, 'not even a password file\n');
    assert.equal(await runPasswd(['-c', '-b', file, 'bob', 'pw'], makeIo()), 0);
    const pf = await load(file);
    assert.equal(pf.size, 1);
    assert.ok(pf.has('bob'));
  });

  it('-b adds a user and updates an existing one, keeping the other lines', async (t) => {
    const file = join(await tempDir(t), 'pw');
    assert.equal(await runPasswd(['-c', '-b', file, 'alice', 'one'], makeIo()), 0);
    const before = await readFile(file, 'utf8');
    await writeFile(file, `# managed by hand\n${before}`);
    assert.equal(await runPasswd(['-b', file, 'bob', 'two'], makeIo()), 0);
    assert.equal(await runPasswd(['-b', '-I', '2000', file, 'alice', 'three'], makeIo()), 0);
    const text = await readFile(file, 'utf8');
    const lines = text.trimEnd().split('\n');
    assert.equal(lines[0], '# managed by hand');
    assert.match(lines[1] ?? '', /^alice:\$7\$2000\$/); // updated in place, with -I honoured
    assert.match(lines[2] ?? '', /^bob:\$7\$101\$/);
    assert.equal(lines.length, 3);
    const pf = await load(file);
    assert.equal(await pf.verify('alice', 'three'), true);
    assert.equal(await pf.verify('alice', 'one'), false);
    assert.equal(await pf.verify('bob', 'two'), true);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('-H sha512 writes a $6$ entry', async (t) => {
    const file = join(await tempDir(t), 'pw');
    assert.equal(await runPasswd(['-H', 'sha512', '-c', '-b', file, 'old', 'pw'], makeIo()), 0);
    assert.match(await readFile(file, 'utf8'), /^old:\$6\$/);
    assert.equal(await (await load(file)).verify('old', 'pw'), true);
  });

  it('-D deletes a user and fails (file untouched) for an unknown one', async (t) => {
    const file = join(await tempDir(t), 'pw');
    await runPasswd(['-c', '-b', file, 'alice', 'a'], makeIo());
    await runPasswd(['-b', file, 'bob', 'b'], makeIo());
    assert.equal(await runPasswd(['-D', file, 'alice'], makeIo()), 0);
    const pf = await load(file);
    assert.deepEqual([pf.has('alice'), pf.has('bob')], [false, true]);
    const before = await readFile(file, 'utf8');
    const io = makeIo();
    assert.equal(await runPasswd(['-D', file, 'nobody'], io), 1);
    assert.match(io.err.text, /User nobody not found/);
    assert.equal(await readFile(file, 'utf8'), before);
  });

  it('prompts twice and reads the password from piped stdin', async (t) => {
    const file = join(await tempDir(t), 'pw');
    const io = makeIo('piped-pw\npiped-pw\n');
    assert.equal(await runPasswd(['-c', file, 'carol'], io), 0, io.err.text);
    assert.equal(io.out.text, 'Password: Reenter password: \n');
    assert.ok(!io.out.text.includes('piped-pw'));
    assert.equal(await (await load(file)).verify('carol', 'piped-pw'), true);

    const io2 = makeIo('second\r\nsecond\r\n'); // CRLF input, update path
    assert.equal(await runPasswd([file, 'dave'], io2), 0, io2.err.text);
    assert.equal(await (await load(file)).verify('dave', 'second'), true);
  });

  it('fails without writing when the two passwords differ, or no password is given', async (t) => {
    const file = join(await tempDir(t), 'pw');
    let io = makeIo('one\ntwo\n');
    assert.equal(await runPasswd(['-c', file, 'carol'], io), 1);
    assert.match(io.err.text, /Passwords do not match/);
    io = makeIo('');
    assert.equal(await runPasswd(['-c', file, 'carol'], io), 1);
    io = makeIo('\n\n');
    assert.equal(await runPasswd(['-c', file, 'carol'], io), 1);
    assert.match(io.err.text, /Empty password/);
    await assert.rejects(stat(file), { code: 'ENOENT' });
  });

  it('reads keystrokes from a TTY in raw mode, without echo, honouring backspace', async (t) => {
    const file = join(await tempDir(t), 'pw');
    const stdin = Object.assign(new PassThrough(), {
      isTTY: true,
      rawCalls: [] as boolean[],
      setRawMode(mode: boolean) {
        this.rawCalls.push(mode);
        return this;
      },
    });
    const out = new Capture();
    const err = new Capture();
    const done = runPasswd(['-c', file, 'tty'], { stdin, stdout: out, stderr: err });
    stdin.write('hunterX\u007f2\r');
    stdin.write('hunter2\r');
    assert.equal(await done, 0, err.text);
    assert.deepEqual(stdin.rawCalls, [true, false]);
    assert.ok(!out.text.includes('hunter'), out.text);
    assert.equal(out.text, 'Password: \nReenter password: \n');
    assert.equal(await (await load(file)).verify('tty', 'hunter2'), true);
  });

  it('replaces the file atomically and follows a symlink to its target', async (t) => {
    const dir = await tempDir(t);
    const real = join(dir, 'real-pw');
    const link = join(dir, 'pw');
    await runPasswd(['-c', '-b', real, 'a', '1'], makeIo());
    await symlink(real, link);
    assert.equal(await runPasswd(['-b', link, 'b', '2'], makeIo()), 0);
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.ok((await load(real)).has('b'));
    assert.deepEqual((await readdir(dir)).sort(), ['pw', 'real-pw']); // no temporary file left behind
  });

  it('refuses to rewrite a file it cannot parse', async (t) => {
    const file = join(await tempDir(t), 'pw');
    await writeFile(file, 'alice:plaintext\n');
    const io = makeIo();
    assert.equal(await runPasswd(['-b', file, 'bob', 'x'], io), 1);
    assert.match(io.err.text, /:1: .*plain-text/);
    assert.equal(await readFile(file, 'utf8'), 'alice:plaintext\n');
  });

  it('checks usage like mosquitto_passwd', async (t) => {
    const file = join(await tempDir(t), 'pw');
    const cases: Array<[string[], RegExp]> = [
      [['-c', '-D', file, 'u'], /-c and -D cannot be used together/],
      [['-b', '-D', file, 'u'], /-b and -D cannot be used together/],
      [['-I', '0', '-b', file, 'u', 'p'], /iterations must be > 0/],
      [['-I'], /-I argument given/],
      [['-H', 'md5', file, 'u'], /Unknown hash type/],
      [['-b', file, 'u:x', 'p'], /':' character/],
      [['-x', file, 'u'], /Unknown option/],
    ];
    for (const [argv, message] of cases) {
      const io = makeIo();
      assert.equal(await runPasswd(argv, io), 1, argv.join(' '));
      assert.match(io.err.text, message, argv.join(' '));
    }
    const io = makeIo();
    assert.equal(await runPasswd(['-b', file, 'u'], io), 1); // missing password
    assert.match(io.out.text, /Usage: tern passwd/);
    const io2 = makeIo();
    assert.equal(await runPasswd(['-b', join(file, 'missing'), 'u', 'p'], io2), 1);
    assert.match(io2.err.text, /Unable to open password file/);
  });
});
