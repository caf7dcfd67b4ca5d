/**
 * Key spelling and key paths. TOML files use snake_case keys, the schema and
 * code use camelCase; the mapping is mechanical in both directions so one
 * function serves every key (no per-key tables to keep in sync).
 */

export type PathSegment = string | number;

/** A key a TOML file may use: lowercase words joined by single underscores. */
const SNAKE_KEY = /^[a-z][a-z0-9]*(?:_[a-z][a-z0-9]*)*$/;
const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export function isSnakeKey(key: string): boolean {
  return SNAKE_KEY.test(key);
}

/** `max_packet_size` -> `maxPacketSize`. Only meaningful for keys that pass isSnakeKey. */
export function snakeToCamel(key: string): string {
  return key.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** `maxPacketSize` -> `max_packet_size`. */
export function camelToSnake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** `['listeners', 0, 'port']` -> `listeners[0].port`; odd keys are quoted as TOML would. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = BARE_KEY.test(seg) ? seg : JSON.stringify(seg);
      out += out === '' ? key : `.${key}`;
    }
  }
  return out;
}

/** Edit distance (insert/delete/substitute, plus adjacent transposition). */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[(i - 1) * cols + j]! + 1, d[i * cols + j - 1]! + 1, d[(i - 1) * cols + j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        v = Math.min(v, d[(i - 2) * cols + j - 2]! + 1);
      }
      d[i * cols + j] = v;
    }
  }
  return d[rows * cols - 1]!;
}

const normalize = (key: string): string => key.toLowerCase().replace(/[-_]/g, '');

/** The known key the user most likely meant, or undefined when nothing is close. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  const n = normalize(key);
  const same = known.find((k) => normalize(k) === n);
  if (same !== undefined) return same;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(key.length / 3)) + 1;
  for (const k of known) {
    const dist = distance(key, k);
    if (dist < bestDistance) {
      best = k;
      bestDistance = dist;
    }
  }
  return best;
}
