/**
 * A reader for the small subset of YAML the manifests in deploy/k8s use, so
 * test/deploy/deploy.test.ts can check their structure without a YAML
 * dependency: block mappings and sequences (indented by spaces), `---`
 * between documents, `#` comments, plain / single- / double-quoted scalars,
 * one-line flow sequences (`["a", "b"]`), `{}` and `[]`, and literal block
 * scalars (`|`, `|-`). Anything else (tabs, anchors, tags, flow mappings with
 * content, multi-line plain scalars, duplicate keys) throws, naming the line:
 * a manifest that strays from the subset fails the test rather than being
 * misread.
 */

export type YamlValue = string | number | boolean | null | YamlValue[] | { [key: string]: YamlValue };

interface Line {
  /** 1-based line number in the file. */
  readonly no: number;
  readonly indent: number;
  /** Text after the indentation, comment removed, trailing blanks trimmed. */
  readonly text: string;
  /** The raw line (block scalars keep their content verbatim). */
  readonly raw: string;
}

class Reader {
  readonly #lines: Line[];
  readonly #name: string;
  #i = 0;

  constructor(lines: Line[], name: string) {
    this.#lines = lines;
    this.#name = name;
  }

  fail(message: string, line?: Line): never {
    throw new Error(`${this.#name}${line === undefined ? '' : `:${line.no}`}: ${message}`);
  }

  /** The next line that carries content (blank and comment-only lines skipped). */
  peek(): Line | undefined {
    while (this.#i < this.#lines.length && this.#lines[this.#i]!.text === '') this.#i++;
    return this.#lines[this.#i];
  }

  next(): Line {
    const line = this.peek();
    if (line === undefined) this.fail('unexpected end of document');
    this.#i++;
    return line;
  }

  /** Raw lines of a block scalar: every following line indented deeper than `parent`, or blank. */
  blockScalar(parent: number, chomp: 'clip' | 'strip', at: Line): string {
    const raw: string[] = [];
    while (this.#i < this.#lines.length) {
      const line = this.#lines[this.#i]!;
      const blank = line.raw.trim() === '';
      if (!blank && line.indent <= parent) break;
      raw.push(line.raw);
      this.#i++;
    }
    const first = raw.find((r) => r.trim() !== '');
    if (first === undefined) this.fail('empty block scalar', at);
    const indent = first.length - first.trimStart().length;
    const body = raw.map((r) => (r.trim() === '' ? '' : r.slice(indent)));
    while (body.length > 0 && body[body.length - 1] === '') body.pop();
    return chomp === 'strip' ? body.join('\n') : `${body.join('\n')}\n`;
  }
}

/** Remove a `#` comment that is not inside quotes. */
function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote !== null) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || text[i - 1] === ' ')) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

function scalar(text: string, reader: Reader, line: Line): YamlValue {
  if (text.startsWith('"')) {
    if (!text.endsWith('"') || text.length < 2) reader.fail(`unterminated string ${text}`, line);
    return JSON.parse(text) as string;
  }
  if (text.startsWith("'")) {
    if (!text.endsWith("'") || text.length < 2) reader.fail(`unterminated string ${text}`, line);
    return text.slice(1, -1).replaceAll("''", "'");
  }
  if (text === '{}') return {};
  if (text.startsWith('[')) {
    if (!text.endsWith(']')) reader.fail(`a flow sequence must end on its line: ${text}`, line);
    const inner = text.slice(1, -1).trim();
    if (inner === '') return [];
    const items = inner.match(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,]+/g) ?? [];
    const rest = inner.replace(/"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,]+/g, '').replace(/[\s,]/g, '');
    if (rest !== '') reader.fail(`unsupported flow sequence ${text}`, line);
    return items.map((item) => scalar(item.trim(), reader, line));
  }
  if (/^[&*!{]/.test(text)) reader.fail(`unsupported YAML (anchor, alias, tag or flow mapping): ${text}`, line);
  if (text === 'true' || text === 'false') return text === 'true';
  if (text === 'null' || text === '~') return null;
  if (/^-?(0|[1-9][0-9]*)$/.test(text)) return Number(text);
  // YAML 1.1, as Kubernetes reads it: 0440 is octal.
  if (/^0[0-7]+$/.test(text)) return Number.parseInt(text, 8);
  return text;
}

const KEY = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#\-?:,[\]{}&*!|>%@`][^:]*?)\s*:(?:\s+(.*))?$/;

/** The value after `key:` (or the rest of a `- key: value` item). */
function valueAfterKey(rest: string | undefined, parent: number, reader: Reader, line: Line): YamlValue {
  if (rest === undefined || rest === '') {
    const child = reader.peek();
    if (child === undefined || child.indent < parent) return null;
    if (child.indent > parent) return node(reader, child.indent);
    // `key:` followed by a sequence at the key's own indentation.
    return child.text.startsWith('- ') || child.text === '-' ? sequence(reader, parent) : null;
  }
  if (rest === '|' || rest === '|-') return reader.blockScalar(parent, rest === '|' ? 'clip' : 'strip', line);
  if (rest.startsWith('>') || rest.startsWith('|')) reader.fail(`unsupported block scalar ${rest}`, line);
  const value = scalar(rest, reader, line);
  const after = reader.peek();
  if (after !== undefined && after.indent > parent) reader.fail('multi-line plain scalars are not supported', after);
  return value;
}

function mapping(reader: Reader, indent: number, firstText?: string, firstLine?: Line): { [key: string]: YamlValue } {
  const out: { [key: string]: YamlValue } = {};
  const entry = (text: string, line: Line): void => {
    const m = KEY.exec(text);
    if (m === null) reader.fail(`expected "key: value", got ${JSON.stringify(text)}`, line);
    const rawKey = m[1]!;
    const key = scalar(rawKey, reader, line);
    if (typeof key !== 'string' && typeof key !== 'number') reader.fail(`unsupported key ${rawKey}`, line);
    const name = String(key);
    if (Object.hasOwn(out, name)) reader.fail(`duplicate key ${name}`, line);
    out[name] = valueAfterKey(m[2], indent, reader, line);
  };
  if (firstText !== undefined && firstLine !== undefined) entry(firstText, firstLine);
  for (;;) {
    const line = reader.peek();
    if (line === undefined || line.indent < indent) return out;
    if (line.indent > indent) reader.fail('unexpected indentation', line);
    if (line.text.startsWith('- ') || line.text === '-') return out;
    reader.next();
    entry(line.text, line);
  }
}

function sequence(reader: Reader, indent: number): YamlValue[] {
  const out: YamlValue[] = [];
  for (;;) {
    const line = reader.peek();
    if (line === undefined || line.indent < indent) return out;
    if (line.indent > indent) reader.fail('unexpected indentation', line);
    if (!(line.text.startsWith('- ') || line.text === '-')) return out;
    reader.next();
    const item = line.text === '-' ? '' : line.text.slice(2).trimStart();
    const itemIndent = indent + (line.text.length - item.length);
    if (item === '') {
      const child = reader.peek();
      out.push(child !== undefined && child.indent > indent ? node(reader, child.indent) : null);
    } else if (KEY.test(item) && !/^["'[]/.test(item)) {
      out.push(mapping(reader, itemIndent, item, line));
    } else {
      out.push(scalar(item, reader, line));
      const after = reader.peek();
      if (after !== undefined && after.indent > indent) reader.fail('multi-line plain scalars are not supported', after);
    }
  }
}

function node(reader: Reader, indent: number): YamlValue {
  const line = reader.peek();
  if (line === undefined) return null;
  return line.text.startsWith('- ') || line.text === '-' ? sequence(reader, indent) : mapping(reader, indent);
}

/** Every document of a multi-document YAML text; documents holding only comments are left out. */
export function parseYamlDocuments(text: string, name = 'yaml'): YamlValue[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`${name}:${i + 1}: tabs are not allowed in YAML indentation`);
    if (/^---\s*$/.test(raw)) {
      docs.push([]);
      return;
    }
    const indent = raw.length - raw.trimStart().length;
    docs[docs.length - 1]!.push({ no: i + 1, indent, text: stripComment(raw.trimStart()), raw });
  });
  const out: YamlValue[] = [];
  for (const lines of docs) {
    const reader = new Reader(lines, name);
    const first = reader.peek();
    if (first === undefined) continue;
    if (first.indent !== 0) reader.fail('a document must start at column 1', first);
    const value = node(reader, 0);
    const extra = reader.peek();
    if (extra !== undefined) reader.fail(`unexpected ${JSON.stringify(extra.text)}`, extra);
    out.push(value);
  }
  return out;
}
