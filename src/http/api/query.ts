/** Query-string helpers shared by the list endpoints: paging, flags, filters. */
import { badRequest } from '../respond.js';

export interface Paging {
  offset: number;
  limit: number;
}

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;

function intParam(url: URL, name: string, fallback: number, min: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw badRequest(`${name} must be a whole number`);
  const n = Number(raw);
  if (n < min || n > max) throw badRequest(`${name} must be between ${min} and ${max}`);
  return n;
}

export function paging(url: URL): Paging {
  return {
    offset: intParam(url, 'offset', 0, 0, Number.MAX_SAFE_INTEGER),
    limit: intParam(url, 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT),
  };
}

export interface Page<T> {
  total: number;
  offset: number;
  limit: number;
  items: T[];
}

export function page<T>(all: readonly T[], { offset, limit }: Paging): Page<T> {
  return { total: all.length, offset, limit, items: all.slice(offset, offset + limit) };
}

/** `true`/`false` (or absent: undefined). */
export function boolParam(url: URL, name: string): boolean | undefined {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return undefined;
  if (raw === 'true' || raw === '1') return true;
  if (raw === 'false' || raw === '0') return false;
  throw badRequest(`${name} must be true or false`);
}

/** Case-insensitive substring test for `?search=`. */
export function searcher(url: URL): (...fields: Array<string | undefined>) => boolean {
  const q = (url.searchParams.get('search') ?? '').toLowerCase();
  if (q === '') return () => true;
  return (...fields) => fields.some((f) => f !== undefined && f.toLowerCase().includes(q));
}

export function byString<T>(key: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  };
}
