import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, pbkdf2Sync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_ITERATIONS,
  PasswordFile,
  SALT_LENGTH,
  deleteUser,
  hashPassword,
  upsertUser,
  usernameProblem,
} from '../../src/auth/password-file.js';
import { isTernError } from '../../src/errors.js';

/** Independent $7$ builder (node's pbkdf2Sync, not the module under test). */
function entry7(password: string, salt: Buffer, iterations: number): string {
  const hash = pbkdf2Sync(password, salt, iterations, 64, 'sha512');
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}
function entry6(password: string, salt: Buffer): string {
  const hash = createHash('sha512').update(password).update(salt).digest();
  return `$6$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Resolves true when `p` settles before the next macrotask (i.e. without waiting for the thread pool). */
async function settlesImmediately(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(() => {
    settled = true;
  });
  await new Promise((r) => setImmediate(r));
  return settled;
}

describe('PasswordFile.parse / verify', () => {
  const salt = Buffer.from('0123456789ab');
  const text = [
    '# users',
    `alice:${entry7('wonderland', salt, 101)}`,
    '',
    `  bob : ${entry6('builder', salt)}  `,
    `carol:${entry7('ÿ-ünïcode', Buffer.from('another-salt-16b'), 7)}\r`,
  ].join('\n');
  const pf = PasswordFile.parse(text, 'pw.txt');

  it('reads $7$ (PBKDF2-SHA512) and $6$ (SHA512) lines, skipping comments and blank lines', () => {
    assert.equal(pf.size, 3);
    assert.ok(pf.has('alice') && pf.has('bob') && pf.has('carol'));
    assert.ok(!pf.has('dave'));
  });

  it('accepts the right password and rejects a wrong one', async () => {
    assert.equal(await pf.verify('alice', 'wonderland'), true);
    assert.equal(await pf.verify('alice', 'Wonderland'), false);
    assert.equal(await pf.verify('bob', 'builder'), true);
    assert.equal(await pf.verify('bob', 'builde'), false);
    assert.equal(await pf.verify('carol', 'ÿ-ünïcode'), true);
  });

  it('takes the password as a Buffer (MQTT passwords are binary data)', async () => {
    assert.equal(await pf.verify('alice', Buffer.from('wonderland')), true);
    assert.equal(await pf.verify('alice', Buffer.from('wonderlanD')), false);
  });

  it('rejects unknown users, missing passwords and a password of another user', async () => {
    assert.equal(await pf.verify('dave', 'wonderland'), false);
    assert.equal(await pf.verify('alice', undefined), false);
    assert.equal(await pf.verify('bob', 'wonderland'), false);
  });
});

describe('PasswordFile: malformed lines', () => {
  const salt = Buffer.alloc(SALT_LENGTH, 1);
  const good = entry7('x', salt, 101);
  const bad: Array<[line: string, what: RegExp]> = [
    ['no-colon-here', /expected "username:hash"/],
    [`:${good}`, /empty username/],
    ['dave:', /empty password hash/],
    ['dave:plaintext', /plain-text passwords are not supported/],
    ['dave:$5$abc$def', /unsupported hash type/],
    ['dave:$7$101$c2FsdA==', /\$7\$ITERATIONS\$SALT\$HASH/],
    [`dave:$7$abc$${salt.toString('base64')}$${Buffer.alloc(64).toString('base64')}`, /invalid iteration count/],
    [`dave:$7$0$${salt.toString('base64')}$${Buffer.alloc(64).toString('base64')}`, /invalid iteration count/],
    [`dave:$7$101$!!!!$${Buffer.alloc(64).toString('base64')}`, /invalid base64 salt/],
    [`dave:$7$101$${salt.toString('base64')}$${Buffer.alloc(32).toString('base64')}`, /64 bytes/],
    [`dave:$6$${salt.toString('base64')}`, /\$6\$SALT\$HASH/],
    [`alice:${good}`, /duplicate user "alice"/],
  ];
  for (const [line, what] of bad) {
    it(`throws ERR_AUTH_PASSWORD_FILE naming file and line for ${JSON.stringify(line.slice(0, 30))}`, () => {
      const text = `# header\nalice:${good}\n\n${line}\n`;
      assert.throws(
        () => PasswordFile.parse(text, '/etc/tern/passwd'),
        (err: unknown) => {
          assert.ok(isTernError(err, 'ERR_AUTH_PASSWORD_FILE'), String(err));
          assert.ok(err.message.includes('/etc/tern/passwd:4:'), err.message);
          assert.match(err.message, what);
          return true;
        },
      );
    });
  }

  it('load() reports a missing file with ERR_AUTH_PASSWORD_FILE', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'tern-pw-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await assert.rejects(PasswordFile.load(join(dir, 'nope')), (err: unknown) => isTernError(err, 'ERR_AUTH_PASSWORD_FILE'));
    const file = join(dir, 'pw');
    await writeFile(file, `u:${good}\n`);
    const pf = await PasswordFile.load(file);
    assert.equal(await pf.verify('u', 'x'), true);
  });
});

describe('PasswordFile: verification cache', () => {
  // Enough iterations that a real PBKDF2 cannot finish before the next macrotask.
  const SLOW = 60_000;

  it('answers a repeated successful login from the cache, without running PBKDF2 again', async () => {
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x');
    assert.equal(await settlesImmediately(pf.verify('u', 'pw')), false, 'first check runs PBKDF2 on the thread pool');
    assert.equal(await pf.verify('u', 'pw'), true);
    assert.equal(await settlesImmediately(pf.verify('u', 'pw')), true, 'second check is a cache hit');
  });

  it('never caches a failure', async () => {
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x');
    assert.equal(await pf.verify('u', 'wrong'), false);
    assert.equal(await settlesImmediately(pf.verify('u', 'wrong')), false);
  });

  it('forgets a verification after the TTL (injected clock)', async () => {
    let now = 1_000;
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x', {
      cacheTtlMs: 5_000,
      now: () => now,
    });
    assert.equal(await pf.verify('u', 'pw'), true);
    now += 4_999;
    assert.equal(await settlesImmediately(pf.verify('u', 'pw')), true);
    now += 2;
    assert.equal(await settlesImmediately(pf.verify('u', 'pw')), false);
  });

  it('is bounded: the oldest verification is evicted first', async () => {
    const h = await hashPassword('pw', { iterations: SLOW });
    const pf = PasswordFile.parse(`a:${h}\nb:${h}\nc:${h}\n`, 'x', { cacheMaxEntries: 2 });
    assert.equal(await pf.verify('a', 'pw'), true);
    assert.equal(await pf.verify('b', 'pw'), true);
    assert.equal(await pf.verify('c', 'pw'), true); // evicts a
    assert.equal(await settlesImmediately(pf.verify('c', 'pw')), true);
    assert.equal(await settlesImmediately(pf.verify('a', 'pw')), false);
  });

  it('shares one PBKDF2 between concurrent checks of the same credentials', async () => {
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x');
    const t0 = process.hrtime.bigint();
    assert.equal(await pf.verify('u', 'pw'), true);
    const one = Number(process.hrtime.bigint() - t0);
    const pf2 = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x');
    const t1 = process.hrtime.bigint();
    // 8 concurrent checks: with 4 pool threads and no sharing this would take ≥ 2 PBKDF2 rounds.
    const results = await Promise.all(Array.from({ length: 8 }, () => pf2.verify('u', 'pw')));
    const eight = Number(process.hrtime.bigint() - t1);
    assert.deepEqual(results, Array(8).fill(true));
    assert.ok(eight < one * 2.5, `8 concurrent checks took ${eight / 1e6} ms vs ${one / 1e6} ms for one`);
  });

  it('is keyed by the password too: another password for the same user is checked in full', async () => {
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x');
    assert.equal(await pf.verify('u', 'pw'), true);
    assert.equal(await pf.verify('u', 'pw2'), false);
  });

  it('can be disabled with cacheTtlMs: 0', async () => {
    const pf = PasswordFile.parse(`u:${await hashPassword('pw', { iterations: SLOW })}\n`, 'x', { cacheTtlMs: 0 });
    assert.equal(await pf.verify('u', 'pw'), true);
    assert.equal(await settlesImmediately(pf.verify('u', 'pw')), false);
  });
});

describe('hashPassword and file editing', () => {
  it('writes a mosquitto 2 $7$ entry: 101 iterations by default, 12-byte salt, 64-byte hash', async () => {
    const h = await hashPassword('secret');
    const m = /^\$7\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(h);
    assert.ok(m, h);
    assert.equal(Number(m[1]), DEFAULT_ITERATIONS);
    assert.equal(DEFAULT_ITERATIONS, 101);
    const salt = Buffer.from(m[2] as string, 'base64');
    assert.equal(salt.length, 12);
    assert.equal(Buffer.from(m[3] as string, 'base64').length, 64);
    assert.equal(h, entry7('secret', salt, 101)); // independent PBKDF2 gives the same bytes
  });

  it('honours iterations and the $6$ algorithm', async () => {
    const salt = Buffer.from('saltsaltsalt');
    assert.equal(await hashPassword('p', { iterations: 5000, salt }), entry7('p', salt, 5000));
    assert.equal(await hashPassword('p', { algorithm: 'sha512', salt }), entry6('p', salt));
    await assert.rejects(hashPassword('p', { iterations: 0 }));
  });

  it('upsertUser replaces a user in place and keeps every other line', () => {
    const text = '# comment\na:$7$1$x$y\n\nb:$6$x$y\n';
    const r = upsertUser(text, 'a', 'NEW');
    assert.equal(r.updated, true);
    assert.equal(r.text, '# comment\na:NEW\n\nb:$6$x$y\n');
    const r2 = upsertUser('b:1', 'c', 'H');
    assert.equal(r2.updated, false);
    assert.equal(r2.text, 'b:1\nc:H\n');
    assert.equal(upsertUser('', 'a', 'H').text, 'a:H\n');
    assert.equal(upsertUser('a:1\nb:2\na:3\n', 'a', 'H').text, 'a:H\nb:2\n'); // duplicates collapse
  });

  it('deleteUser removes only that user', () => {
    assert.deepEqual(deleteUser('# c\na:1\nb:2\n', 'a'), { text: '# c\nb:2\n', found: true });
    assert.deepEqual(deleteUser('a:1\n', 'z'), { text: 'a:1\n', found: false });
    assert.deepEqual(deleteUser('a:1\n', 'a'), { text: '', found: true });
  });

  it('usernameProblem applies mosquitto_passwd\'s username rules', () => {
    assert.equal(usernameProblem('alice'), undefined);
    assert.equal(usernameProblem('with space'), undefined);
    assert.match(usernameProblem('a:b') ?? '', /':'/);
    assert.match(usernameProblem('a\tb') ?? '', /control/);
    assert.match(usernameProblem('') ?? '', /empty/);
  });
});
