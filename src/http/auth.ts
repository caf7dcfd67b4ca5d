/**
 * Access control for the HTTP listener: a bearer token, HTTP basic auth, or
 * both (either is accepted). The token is `http.token`, or the content of
 * `http.token_file` (readTokenFile). /healthz and /readyz are always open.
 * The token may also come as `?access_token=` so a browser can open the dashboard and
 * its live stream (EventSource cannot set headers); prefer basic auth or a
 * reverse proxy for browsers, since URLs end up in histories and logs.
 *
 * Secrets are compared as SHA-256 digests with timingSafeEqual, so neither
 * the content nor the length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { HttpConfig } from '../config/schema.js';
import { ternError } from '../errors.js';

export interface HttpAuth {
  /** True when no credentials are configured. */
  readonly open: boolean;
  /** The WWW-Authenticate challenge for a 401. */
  readonly challenge: string;
  check(req: IncomingMessage, url: URL): boolean;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function same(a: Buffer, b: string): boolean {
  return timingSafeEqual(a, digest(b));
}

/**
 * The token held by `http.token_file` (a mounted secret, so the token need not
 * sit in the configuration file). Whitespace around it is dropped: files
 * written by `echo` or `kubectl create secret --from-file` end in a newline.
 * A file that cannot be read or holds no token is a configuration error
 * naming the key and the file.
 */
export async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
    throw ternError('ERR_CONFIG_INVALID', `http.token_file ${path}: cannot read it (${reason})`, { cause: err });
  }
  const token = text.trim();
  if (token === '') throw ternError('ERR_CONFIG_INVALID', `http.token_file ${path}: the file holds no token`);
  return token;
}

export function createAuth(config: Pick<HttpConfig, 'token' | 'username' | 'password'>): HttpAuth {
  const token = config.token !== '' ? digest(config.token) : null;
  const basic = config.username !== '' ? digest(`${config.username}:${config.password}`) : null;
  const open = token === null && basic === null;
  return {
    open,
    challenge: basic !== null ? 'Basic realm="tern", charset="UTF-8"' : 'Bearer realm="tern"',
    check(req, url) {
      if (open) return true;
      const header = req.headers.authorization ?? '';
      const space = header.indexOf(' ');
      const scheme = space > 0 ? header.slice(0, space).toLowerCase() : '';
      const value = space > 0 ? header.slice(space + 1).trim() : '';
      if (token !== null) {
        if (scheme === 'bearer' && same(token, value)) return true;
        const query = url.searchParams.get('access_token');
        if (query !== null && same(token, query)) return true;
      }
      if (basic !== null && scheme === 'basic') {
        return same(basic, Buffer.from(value, 'base64').toString('utf8'));
      }
      return false;
    },
  };
}
