/**
 * `tern passwd`: manage a mosquitto-compatible password file, with the same
 * command line as mosquitto_passwd (apps/mosquitto_passwd/mosquitto_passwd.c):
 *
 *   tern passwd [-H sha512-pbkdf2|sha512] [-I iterations] [-c | -D] FILE USER
 *   tern passwd [-H sha512-pbkdf2|sha512] [-I iterations] [-c] -b FILE USER PASSWORD
 *
 *   -c  create FILE (overwriting it) with just USER
 *   -b  batch mode: the password is the last argument
 *   -D  delete USER
 *   -I  PBKDF2 iterations (default 101, as mosquitto 2)
 *   -H  hash type (default sha512-pbkdf2 = `$7$`; sha512 = `$6$` for mosquitto ≤ 1.6)
 *
 * Without -b the password is asked twice ("Password:", "Reenter password:"):
 * without echo on a terminal, else as two lines read from standard input.
 * The file is replaced atomically (temporary file in the same directory,
 * fsync, rename) with mode 0600. Returns the process exit code (0 ok, 1 error).
 */
import { randomBytes } from 'node:crypto';
import { chmod, open, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { isTernError } from '../errors.js';
import {
  DEFAULT_ITERATIONS,
  PasswordFile,
  deleteUser,
  hashPassword,
  upsertUser,
  usernameProblem,
  type HashAlgorithm,
} from '../auth/password-file.js';

/** Standard streams, injectable for tests. `stdin` may be a TTY (`isTTY`, `setRawMode`). */
export interface PasswdIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

const USAGE = `tern passwd manages password files for Tern (mosquitto_passwd compatible).

Usage: tern passwd [-H sha512-pbkdf2 | -H sha512] [-I iterations] [-c | -D] passwordfile username
       tern passwd [-H sha512-pbkdf2 | -H sha512] [-I iterations] [-c] -b passwordfile username password
 -b : run in batch mode to allow passing passwords on the command line.
 -c : create a new password file. This will overwrite existing files.
 -D : delete the username rather than adding/updating its password.
 -H : specify the hashing algorithm. Defaults to sha512-pbkdf2, which is recommended.
 -I : number of PBKDF2 iterations (default ${DEFAULT_ITERATIONS}).
`;

const MAX_PASSWORD_BYTES = 65535;

interface Args {
  create: boolean;
  batch: boolean;
  remove: boolean;
  iterations: number;
  algorithm: HashAlgorithm;
  file: string;
  username: string;
  password: string | undefined;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Args {
  let create = false;
  let batch = false;
  let remove = false;
  let iterations = DEFAULT_ITERATIONS;
  let algorithm: HashAlgorithm = 'sha512-pbkdf2';
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '-c') create = true;
    else if (a === '-b') batch = true;
    else if (a === '-D') remove = true;
    else if (a === '-I' || a === '-H') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`Error: ${a} argument given but not enough other arguments.`);
      if (a === '-I') {
        if (!/^[0-9]+$/.test(v) || Number(v) < 1 || Number(v) > 0x7fffffff) {
          throw new UsageError('Error: Number of iterations must be > 0.');
        }
        iterations = Number(v);
      } else if (v === 'sha512' || v === 'sha512-pbkdf2') {
        algorithm = v;
      } else {
        throw new UsageError(`Error: Unknown hash type '${v}'`);
      }
    } else if (a === '--') {
      i++;
      break;
    } else if (a.startsWith('-') && a.length > 1) {
      throw new UsageError(`Error: Unknown option '${a}'.`);
    } else break;
  }
  if (create && remove) throw new UsageError('Error: -c and -D cannot be used together.');
  if (remove && batch) throw new UsageError('Error: -b and -D cannot be used together.');
  const rest = argv.slice(i);
  const want = batch ? 3 : 2;
  if (rest.length !== want) throw new UsageError('');
  return {
    create,
    batch,
    remove,
    iterations,
    algorithm,
    file: rest[0] as string,
    username: rest[1] as string,
    password: batch ? rest[2] : undefined,
  };
}

export async function runPasswd(argv: string[], io?: PasswdIo): Promise<number> {
  const { stdin, stdout, stderr } = io ?? { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr };
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    if (err.message) stderr.write(`${err.message}\n`);
    else stdout.write(USAGE);
    return 1;
  }

  const problem = usernameProblem(args.username);
  if (problem) {
    stderr.write(`Error: ${problem[0]?.toUpperCase()}${problem.slice(1)}.\n`);
    return 1;
  }

  try {
    const target = await resolveTarget(args.file);

    let existing = '';
    if (!args.create) {
      try {
        existing = await readFile(target, 'utf8');
      } catch (err) {
        stderr.write(`Error: Unable to open password file ${args.file}. ${(err as Error).message}.\n`);
        return 1;
      }
      // Refuse to rewrite a file we could not load afterwards.
      PasswordFile.parse(existing, args.file);
    }

    if (args.remove) {
      const { text, found } = deleteUser(existing, args.username);
      if (!found) {
        stderr.write(`Warning: User ${args.username} not found in password file.\n`);
        return 1;
      }
      await writeAtomic(target, text);
      return 0;
    }

    let password = args.password;
    if (password === undefined) {
      password = await promptPassword(stdin, stdout, stderr);
      if (password === undefined) return 1;
    }
    if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) {
      stderr.write('Error: Password must be less than 65536 characters long.\n');
      return 1;
    }

    const hash = await hashPassword(password, { iterations: args.iterations, algorithm: args.algorithm });
    const text = args.create ? `${args.username}:${hash}\n` : upsertUser(existing, args.username, hash).text;
    await writeAtomic(target, text);
    return 0;
  } catch (err) {
    if (isTernError(err)) {
      stderr.write(`Error: ${err.message}\n`);
      return 1;
    }
    stderr.write(`Error: ${(err as Error).message}\n`);
    return 1;
  }
}

/** Follow a symlinked password file so the link's target is what gets replaced. */
async function resolveTarget(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return file;
    throw err;
  }
}

/** Write `text` to `file` via a 0600 temporary file in the same directory and rename(2). */
async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await chmod(tmp, 0o600); // whatever the umask
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/** Ask for the password twice; undefined (after printing why) when it cannot be had. */
async function promptPassword(stdin: PasswdIo['stdin'], stdout: Writable, stderr: Writable): Promise<string | undefined> {
  const raw = stdin.isTTY === true && typeof stdin.setRawMode === 'function';
  const reader = new PasswordReader(stdin, raw, stdout);
  try {
    stdout.write('Password: ');
    const first = await reader.next();
    if (first === undefined) {
      stderr.write('\nError: No password given.\n');
      return undefined;
    }
    if (first.length === 0) {
      stderr.write('Error: Empty password.\n');
      return undefined;
    }
    stdout.write('Reenter password: ');
    const second = await reader.next();
    if (second !== first) {
      stderr.write('\nError: Passwords do not match.\n');
      return undefined;
    }
    if (!raw) stdout.write('\n'); // a terminal already got the newline typed after each password
    return first;
  } finally {
    reader.close();
  }
}

/**
 * Reads password lines from stdin. On a terminal (`raw`) the terminal is put
 * in raw mode so nothing is echoed; keystrokes are edited here (Enter ends,
 * Backspace deletes, Ctrl-C / Ctrl-D abort). Otherwise input is plain lines.
 */
class PasswordReader {
  readonly #stream: PasswdIo['stdin'];
  readonly #raw: boolean;
  readonly #echo: Writable;
  #buffer = '';
  #ended = false;
  #waiter: (() => void) | undefined = undefined;
  readonly #onData = (chunk: Buffer | string): void => {
    this.#buffer += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.#wake();
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
    this.#wake();
  };

  constructor(stream: PasswdIo['stdin'], raw: boolean, echo: Writable) {
    this.#stream = stream;
    this.#raw = raw;
    this.#echo = echo;
    if (raw) stream.setRawMode?.(true);
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onEnd);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next line, or undefined at end of input (or Ctrl-C / Ctrl-D on a terminal). */
  async next(): Promise<string | undefined> {
    let line = '';
    for (;;) {
      const buf = this.#buffer;
      if (this.#raw) {
        let i = 0;
        for (; i < buf.length; i++) {
          const ch = buf[i] as string;
          if (ch === '\r' || ch === '\n') {
            this.#buffer = buf.slice(i + 1);
            this.#echo.write('\n');
            return line;
          }
          if (ch === '\u0003' || ch === '\u0004') {
            this.#buffer = '';
            this.#echo.write('\n');
            return undefined;
          }
          if (ch === '\u007f' || ch === '\b') line = Array.from(line).slice(0, -1).join('');
          else line += ch;
        }
        this.#buffer = '';
      } else {
        const nl = buf.indexOf('\n');
        if (nl >= 0) {
          this.#buffer = buf.slice(nl + 1);
          const l = buf.slice(0, nl);
          return l.endsWith('\r') ? l.slice(0, -1) : l;
        }
      }
      if (this.#ended) {
        if (this.#raw) return undefined;
        if (this.#buffer.length === 0) return undefined;
        const l = this.#buffer;
        this.#buffer = '';
        return l;
      }
      await new Promise<void>((resolve) => {
        this.#waiter = resolve;
      });
    }
  }

  close(): void {
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('error', this.#onEnd);
    this.#stream.pause();
    if (this.#raw) this.#stream.setRawMode?.(false);
  }
}
