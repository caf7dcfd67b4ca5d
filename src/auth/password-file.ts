/**
 * Mosquitto-compatible password file (`password_file`, made by
 * `mosquitto_passwd` or `tern passwd`). One user per line:
 *
 *   username:$7$ITERATIONS$SALT_BASE64$HASH_BASE64   PBKDF2-HMAC-SHA512, 64-byte hash (mosquitto ≥ 2.0 default)
 *   username:$6$SALT_BASE64$HASH_BASE64              SHA512(password ‖ salt) (mosquitto 1.x default)
 *
 * Blank lines and lines starting with `#` are ignored; blanks around the
 * username and the hash are trimmed (mosquitto `pwfile__parse`). mosquitto 2
 * writes a 12-byte salt (`SALT_LEN`) and 101 iterations by default
 * (`PW_DEFAULT_ITERATIONS`, common/password_mosq.h); reading accepts any
 * non-empty salt and any iteration count ≥ 1.
 *
 * Verification is on the CONNECT path, so it never blocks the event loop:
 * PBKDF2 runs on the libuv thread pool (crypto.pbkdf2) and hashes are compared
 * with crypto.timingSafeEqual. A reconnect storm of one client must not burn a
 * thread-pool slot per attempt, so successful verifications are remembered for
 * a short time (default 60 s, at most 1,000 entries, oldest evicted first)
 * under an HMAC, keyed by a per-instance random secret, of user, password and
 * the file entry; concurrent checks of the same credentials share one PBKDF2.
 * Failures are never cached. Changing the file means loading a new
 * PasswordFile, which starts with an empty cache.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { ternError } from '../errors.js';

const pbkdf2Async = promisify(pbkdf2);

/** mosquitto 2 `PW_DEFAULT_ITERATIONS`. */
export const DEFAULT_ITERATIONS = 101;
/** mosquitto 2 `SALT_LEN`. */
export const SALT_LENGTH = 12;
const HASH_LENGTH = 64;

export type HashAlgorithm = 'sha512-pbkdf2' | 'sha512';

interface Entry {
  readonly type: 6 | 7;
  readonly iterations: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
  /** The hash field as written in the file; part of the cache key. */
  readonly text: string;
}

export interface PasswordFileOptions {
  /** How long a successful verification is remembered, in ms. Default 60000; 0 disables the cache. */
  cacheTtlMs?: number;
  /** Maximum remembered verifications. Default 1000. */
  cacheMaxEntries?: number;
  /** Clock, injectable for tests. Default Date.now. */
  now?: () => number;
}

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(s: string): Buffer | undefined {
  if (!BASE64_RE.test(s) || s.length % 4 !== 0) return undefined;
  return Buffer.from(s, 'base64');
}

/** Parse the part after `username:`; returns a reason string when malformed. */
function parseHashField(field: string): Entry | string {
  const parts = field.split('$');
  // "$7$it$salt$hash" splits to ['', '7', it, salt, hash]
  if (parts[0] !== '') return 'hash does not start with "$" (plain-text passwords are not supported)';
  if (parts[1] === '7') {
    if (parts.length !== 5) return 'a $7$ hash needs the form $7$ITERATIONS$SALT$HASH';
    const itText = parts[2] as string;
    if (!/^[0-9]{1,10}$/.test(itText)) return `invalid iteration count "${itText}"`;
    const iterations = Number(itText);
    if (iterations < 1 || iterations > 0x7fffffff) return `invalid iteration count "${itText}"`;
    const salt = decodeBase64(parts[3] as string);
    if (salt === undefined || salt.length === 0) return 'invalid base64 salt';
    const hash = decodeBase64(parts[4] as string);
    if (hash === undefined || hash.length !== HASH_LENGTH) return `hash must be ${HASH_LENGTH} bytes of base64`;
    return { type: 7, iterations, salt, hash, text: field };
  }
  if (parts[1] === '6') {
    if (parts.length !== 4) return 'a $6$ hash needs the form $6$SALT$HASH';
    const salt = decodeBase64(parts[2] as string);
    if (salt === undefined || salt.length === 0) return 'invalid base64 salt';
    const hash = decodeBase64(parts[3] as string);
    if (hash === undefined || hash.length !== HASH_LENGTH) return `hash must be ${HASH_LENGTH} bytes of base64`;
    return { type: 6, iterations: 1, salt, hash, text: field };
  }
  return `unsupported hash type "$${parts[1] ?? ''}$" (expected $6$ or $7$)`;
}

function toBuffer(password: Buffer | string): Buffer {
  return typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
}

async function computeHash(entry: Pick<Entry, 'type' | 'iterations' | 'salt'>, password: Buffer): Promise<Buffer> {
  if (entry.type === 7) return pbkdf2Async(password, entry.salt, entry.iterations, HASH_LENGTH, 'sha512');
  // One SHA-512 is cheap enough to run inline.
  return createHash('sha512').update(password).update(entry.salt).digest();
}

/** Used for unknown users so that "no such user" costs about as much as "wrong password". */
const DUMMY_ENTRY: Entry = {
  type: 7,
  iterations: DEFAULT_ITERATIONS,
  salt: randomBytes(SALT_LENGTH),
  hash: Buffer.alloc(HASH_LENGTH),
  text: '',
};

function u32(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export class PasswordFile {
  readonly #entries: Map<string, Entry>;
  readonly #ttl: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #cacheSecret = randomBytes(32);
  /** cache key → expiry time (ms). Map order = insertion order, used for eviction. */
  readonly #verified = new Map<string, number>();
  readonly #inflight = new Map<string, Promise<boolean>>();

  private constructor(entries: Map<string, Entry>, options: PasswordFileOptions) {
    this.#entries = entries;
    this.#ttl = options.cacheTtlMs ?? 60_000;
    this.#maxEntries = options.cacheMaxEntries ?? 1000;
    this.#now = options.now ?? Date.now;
  }

  /** Read and parse a password file. Throws ERR_AUTH_PASSWORD_FILE. */
  static async load(path: string, options: PasswordFileOptions = {}): Promise<PasswordFile> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw ternError('ERR_AUTH_PASSWORD_FILE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
    return PasswordFile.parse(text, path, options);
  }

  /** Parse password-file text; `fileName` names the source in errors (`file:line: reason`). */
  static parse(text: string, fileName = '<password file>', options: PasswordFileOptions = {}): PasswordFile {
    const entries = new Map<string, Entry>();
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = (lines[i] as string).trim();
      if (line.length === 0 || line.charCodeAt(0) === 0x23 /* # */) continue;
      const fail = (reason: string): never => {
        throw ternError('ERR_AUTH_PASSWORD_FILE', `${fileName}:${i + 1}: ${reason}`);
      };
      const colon = line.indexOf(':');
      if (colon < 0) fail('expected "username:hash"');
      const username = line.slice(0, colon).trim();
      const field = line.slice(colon + 1).trim();
      if (username.length === 0) fail('empty username');
      if (field.length === 0) fail(`empty password hash for user "${username}"`);
      const entry = parseHashField(field);
      if (typeof entry === 'string') return fail(`user "${username}": ${entry}`);
      if (entries.has(username)) fail(`duplicate user "${username}"`);
      entries.set(username, entry);
    }
    return new PasswordFile(entries, options);
  }

  get size(): number {
    return this.#entries.size;
  }

  has(username: string): boolean {
    return this.#entries.has(username);
  }

  /**
   * Check a CONNECT username/password. Resolves false for an unknown user, a
   * missing password or a wrong one; never rejects for those.
   */
  async verify(username: string, password: Buffer | string | undefined): Promise<boolean> {
    if (password === undefined) return false;
    const pw = toBuffer(password);
    const entry = this.#entries.get(username);
    if (entry === undefined) {
      await computeHash(DUMMY_ENTRY, pw);
      return false;
    }
    if (this.#ttl <= 0) return this.#check(entry, pw);

    const key = this.#cacheKey(username, entry, pw);
    const expires = this.#verified.get(key);
    if (expires !== undefined) {
      if (expires > this.#now()) return true;
      this.#verified.delete(key);
    }
    let pending = this.#inflight.get(key);
    if (pending === undefined) {
      pending = this.#check(entry, pw).then(
        (ok) => {
          this.#inflight.delete(key);
          if (ok) this.#remember(key);
          return ok;
        },
        (err: unknown) => {
          this.#inflight.delete(key);
          throw err;
        },
      );
      this.#inflight.set(key, pending);
    }
    return pending;
  }

  async #check(entry: Entry, password: Buffer): Promise<boolean> {
    const actual = await computeHash(entry, password);
    return actual.length === entry.hash.length && timingSafeEqual(actual, entry.hash);
  }

  #cacheKey(username: string, entry: Entry, password: Buffer): string {
    const user = Buffer.from(username, 'utf8');
    const hashText = Buffer.from(entry.text, 'utf8');
    // Length-prefixed so no two (user, entry, password) triples share a key.
    return createHmac('sha256', this.#cacheSecret)
      .update(u32(user.length))
      .update(user)
      .update(u32(hashText.length))
      .update(hashText)
      .update(password)
      .digest('base64');
  }

  #remember(key: string): void {
    this.#verified.delete(key);
    while (this.#verified.size >= this.#maxEntries) {
      const oldest = this.#verified.keys().next();
      if (oldest.done) break;
      this.#verified.delete(oldest.value);
    }
    if (this.#maxEntries > 0) this.#verified.set(key, this.#now() + this.#ttl);
  }
}

// ---------------------------------------------------------------------------
// Writing (used by `tern passwd`)
// ---------------------------------------------------------------------------

export interface HashPasswordOptions {
  /** PBKDF2 iterations for `sha512-pbkdf2`. Default 101 (mosquitto 2's default, `mosquitto_passwd -I`). */
  iterations?: number;
  /** Default 'sha512-pbkdf2' ($7$); 'sha512' ($6$) only for old brokers. */
  algorithm?: HashAlgorithm;
  /** Salt to use (tests only). Default: 12 random bytes. */
  salt?: Buffer;
}

/** Hash a password into the field that follows `username:` in the file. */
export async function hashPassword(password: Buffer | string, options: HashPasswordOptions = {}): Promise<string> {
  const algorithm = options.algorithm ?? 'sha512-pbkdf2';
  const iterations = options.iterations ?? DEFAULT_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 0x7fffffff) {
    throw ternError('ERR_CLI_USAGE', `iterations must be a positive integer, got ${String(iterations)}`);
  }
  const salt = options.salt ?? randomBytes(SALT_LENGTH);
  const pw = toBuffer(password);
  if (algorithm === 'sha512') {
    const hash = await computeHash({ type: 6, iterations: 1, salt }, pw);
    return `$6$${salt.toString('base64')}$${hash.toString('base64')}`;
  }
  const hash = await computeHash({ type: 7, iterations, salt }, pw);
  return `$7$${iterations}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/**
 * Why `username` cannot go in a password file, or undefined when it can.
 * Same rules as mosquitto_passwd `is_username_valid` (no `:`, no control
 * characters, < 65536 chars) plus non-empty.
 */
export function usernameProblem(username: string): string | undefined {
  if (username.length === 0) return 'username must not be empty';
  if (Buffer.byteLength(username, 'utf8') > 65535) return 'username must be less than 65536 bytes long';
  if (username.includes(':')) return "username must not contain the ':' character";
  if (/[\u0000-\u001f\u007f]/.test(username)) return 'username must not contain control characters';
  if (username.trim() !== username) return 'username must not start or end with blanks';
  return undefined;
}

/** The username of a file line, or undefined for a blank/comment/odd line. */
function lineUser(line: string): string | undefined {
  const t = line.trim();
  if (t.length === 0 || t.charCodeAt(0) === 0x23) return undefined;
  const colon = t.indexOf(':');
  return colon < 0 ? undefined : t.slice(0, colon).trim();
}

function splitLines(text: string): string[] {
  if (text.length === 0) return [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // trailing newline
  return lines;
}

function joinLines(lines: string[]): string {
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/**
 * Set `username`'s hash in password-file text: replace its line in place (and
 * drop any later duplicates) or append one. Every other line, comments and
 * blank lines included, is kept as is.
 */
export function upsertUser(text: string, username: string, hashField: string): { text: string; updated: boolean } {
  const out: string[] = [];
  let updated = false;
  for (const line of splitLines(text)) {
    if (lineUser(line) === username) {
      if (!updated) out.push(`${username}:${hashField}`);
      updated = true;
    } else {
      out.push(line);
    }
  }
  if (!updated) out.push(`${username}:${hashField}`);
  return { text: joinLines(out), updated };
}

/** Remove `username`'s line(s) from password-file text, keeping every other line. */
export function deleteUser(text: string, username: string): { text: string; found: boolean } {
  const out: string[] = [];
  let found = false;
  for (const line of splitLines(text)) {
    if (lineUser(line) === username) found = true;
    else out.push(line);
  }
  return { text: joinLines(out), found };
}
