/**
 * Finds the line where each key path appears in a TOML text, so config
 * errors can point at `tern.toml:12`. smol-toml returns plain values without
 * positions, so this walks the text's structure: table headers, array-of-
 * tables headers (counting their elements), dotted keys, inline tables and
 * arrays. It runs only on text that smol-toml already parsed, so it may
 * assume the TOML is valid; for anything it does not follow, lookups fall
 * back to the nearest enclosing key that it did find.
 */
import { formatPath, type PathSegment } from './keys.js';

/** formatPath(path) -> 1-based line of the first place the path appears. */
export type KeyLines = ReadonlyMap<string, number>;

class Scanner {
  readonly lines = new Map<string, number>();
  readonly #text: string;
  #pos = 0;
  #line = 1;
  /** Array-of-tables path -> index of its current (last) element. */
  readonly #arrays = new Map<string, number>();

  constructor(text: string) {
    this.#text = text;
  }

  scan(): void {
    let current: PathSegment[] = [];
    const text = this.#text;
    while (this.#pos < text.length) {
      const start = this.#pos;
      this.#skipBlank();
      if (this.#pos >= text.length) break;
      const line = this.#line;
      if (text.startsWith('[[', this.#pos)) {
        this.#pos += 2;
        const table = this.#resolveHeader(this.#readKey());
        const name = formatPath(table);
        const index = (this.#arrays.get(name) ?? -1) + 1;
        this.#arrays.set(name, index);
        current = [...table, index];
        this.#recordPrefixes(current, line);
      } else if (text[this.#pos] === '[') {
        this.#pos += 1;
        current = this.#resolveHeader(this.#readKey());
        this.#recordPrefixes(current, line);
      } else {
        const path = [...current, ...this.#readKey()];
        this.#recordPrefixes(path, line);
        this.#skipSpaces();
        if (text[this.#pos] === '=') this.#pos++;
        this.#value(path);
      }
      this.#skipToLineEnd();
      if (this.#pos === start) this.#pos++; // never stall on text this scanner does not follow
    }
  }

  /** `[a.b]` under `[[a]]` means b in the current (last) element of a. */
  #resolveHeader(parts: string[]): PathSegment[] {
    const out: PathSegment[] = [];
    parts.forEach((part, i) => {
      out.push(part);
      const index = i < parts.length - 1 ? this.#arrays.get(formatPath(out)) : undefined;
      if (index !== undefined) out.push(index);
    });
    return out;
  }

  #recordPrefixes(path: readonly PathSegment[], line: number): void {
    for (let i = 1; i <= path.length; i++) {
      const key = formatPath(path.slice(0, i));
      if (!this.lines.has(key)) this.lines.set(key, line);
    }
  }

  /** A dotted key: bare, "basic" or 'literal' parts separated by dots. */
  #readKey(): string[] {
    const text = this.#text;
    const parts: string[] = [];
    for (;;) {
      this.#skipSpaces();
      const c = text[this.#pos];
      if (c === '"' || c === "'") {
        const start = this.#pos;
        this.#skipString();
        const raw = text.slice(start, this.#pos);
        parts.push(c === '"' ? unescapeBasic(raw.slice(1, -1)) : raw.slice(1, -1));
      } else {
        const start = this.#pos;
        while (this.#pos < text.length && /[A-Za-z0-9_-]/.test(text[this.#pos]!)) this.#pos++;
        parts.push(text.slice(start, this.#pos));
      }
      this.#skipSpaces();
      if (text[this.#pos] !== '.') return parts;
      this.#pos++;
    }
  }

  #value(path: PathSegment[]): void {
    const text = this.#text;
    this.#skipSpaces();
    const c = text[this.#pos];
    if (c === '"' || c === "'") {
      this.#skipString();
    } else if (c === '{') {
      this.#pos++;
      for (;;) {
        this.#skipBlank();
        if (this.#pos >= text.length) return;
        if (text[this.#pos] === '}') {
          this.#pos++;
          return;
        }
        const line = this.#line;
        const before = this.#pos;
        const key = [...path, ...this.#readKey()];
        this.#recordPrefixes(key, line);
        this.#skipSpaces();
        if (text[this.#pos] === '=') this.#pos++;
        this.#value(key);
        this.#skipBlank();
        if (text[this.#pos] === ',') this.#pos++;
        else if (this.#pos === before) this.#pos++;
      }
    } else if (c === '[') {
      this.#pos++;
      let index = 0;
      for (;;) {
        this.#skipBlank();
        if (this.#pos >= text.length) return;
        if (text[this.#pos] === ']') {
          this.#pos++;
          return;
        }
        const before = this.#pos;
        const element = [...path, index];
        this.#recordPrefixes(element, this.#line);
        this.#value(element);
        this.#skipBlank();
        if (text[this.#pos] === ',') {
          this.#pos++;
          index++;
        } else if (this.#pos === before) {
          this.#pos++;
        }
      }
    } else {
      while (this.#pos < text.length && !',]}\n\r#'.includes(text[this.#pos]!)) this.#pos++;
    }
  }

  /** Skip a basic, literal or multi-line string starting at the quote. */
  #skipString(): void {
    const text = this.#text;
    const q = text[this.#pos]!;
    const multi = text.startsWith(q.repeat(3), this.#pos);
    this.#pos += multi ? 3 : 1;
    while (this.#pos < text.length) {
      const c = text[this.#pos]!;
      if (c === '\\' && q === '"') {
        if (text[this.#pos + 1] === '\n') this.#line++;
        this.#pos += 2;
        continue;
      }
      if (c === '\n') this.#line++;
      if (c === q && (!multi || text.startsWith(q.repeat(3), this.#pos))) {
        this.#pos += multi ? 3 : 1;
        // A multi-line string may end with up to two extra quotes: """a"""""
        if (multi) while (text[this.#pos] === q) this.#pos++;
        return;
      }
      this.#pos++;
    }
  }

  #skipSpaces(): void {
    const text = this.#text;
    while (text[this.#pos] === ' ' || text[this.#pos] === '\t') this.#pos++;
  }

  /** Spaces, newlines and comments. */
  #skipBlank(): void {
    const text = this.#text;
    while (this.#pos < text.length) {
      const c = text[this.#pos];
      if (c === ' ' || c === '\t' || c === '\r') this.#pos++;
      else if (c === '\n') {
        this.#line++;
        this.#pos++;
      } else if (c === '#') {
        while (this.#pos < text.length && text[this.#pos] !== '\n') this.#pos++;
      } else return;
    }
  }

  #skipToLineEnd(): void {
    const text = this.#text;
    while (this.#pos < text.length && text[this.#pos] !== '\n') this.#pos++;
  }
}

function unescapeBasic(s: string): string {
  try {
    return JSON.parse(`"${s}"`) as string;
  } catch {
    return s;
  }
}

/** Map every key path in a (valid) TOML text to the line it appears on. */
export function scanKeyLines(text: string): KeyLines {
  const scanner = new Scanner(text);
  scanner.scan();
  return scanner.lines;
}

/** The line of `path`, or of its nearest enclosing key that appears in the text. */
export function lineOf(lines: KeyLines, path: readonly PathSegment[]): number | undefined {
  for (let n = path.length; n > 0; n--) {
    const line = lines.get(formatPath(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return undefined;
}
