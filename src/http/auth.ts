/**
 * Access control for the HTTP listener: a bearer token, HTTP basic auth, or
 * both (either is accepted). /healthz and /readyz are always open. The token
 * may also come as `?access_token=` so a browser can open the dashboard and
 * its live stream (EventSource cannot set headers); prefer basic auth or a
 * reverse proxy for browsers, since URLs end up in histories and logs.
 *
 * Secrets are compared as SHA-256 digests with timingSafeEqual, so neither
 * the content nor the length leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { HttpConfig } from '../config/schema.js';

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
