/**
 * Configuration loading: TOML text (smol-toml) -> snake_case keys mapped to
 * the schema's camelCase -> zod schema (defaults, ranges) -> cross-field
 * checks -> deep-frozen TernConfig. Every problem in a file is reported at
 * once, one per line, as `file:line: key.path: what is wrong`, with key
 * paths spelled as the file spells them.
 */
import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { ternError } from '../errors.js';
import { checkConfig, type ConfigIssue } from './check.js';
import { lineOf, scanKeyLines } from './key-lines.js';
import { camelToSnake, formatPath, isSnakeKey, type PathSegment, snakeToCamel, suggestKey } from './keys.js';
import { describeSchema, describeValue, objectKeys, schemaAt } from './schema-info.js';
import { configSchema, type TernConfig, type TernConfigInput } from './schema.js';

/** How keys are spelled to the reader: as in a TOML file, or as in code. */
type Spelling = 'toml' | 'code';

/** One problem, with its path in code spelling. */
interface Problem {
  readonly path: readonly PathSegment[];
  /** Set for unknown keys: the key exactly as the reader wrote it (last path segment is ignored). */
  readonly unknownKey?: string;
  readonly message?: string;
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Rename snake_case keys to camelCase, recursively. A key that is not
 * snake_case (`maxInflight`, `Max-Inflight`) is reported as unknown and
 * dropped, so the camelCase schema cannot accept it by accident.
 */
function camelizeKeys(value: unknown, path: PathSegment[], problems: Problem[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => camelizeKeys(v, [...path, i], problems));
  if (!isTable(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (!isSnakeKey(key)) {
      problems.push({ path: [...path, key], unknownKey: key });
      continue;
    }
    const camel = snakeToCamel(key);
    out[camel] = camelizeKeys(v, [...path, camel], problems);
  }
  return out;
}

function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let v = root;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PathSegment, unknown>)[seg];
  }
  return v;
}

/** Schema issues -> problems; one problem per key path. */
function schemaProblems(issues: readonly z.core.$ZodIssue[], input: unknown, spelling: Spelling): Problem[] {
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    const path = issue.path.filter((s): s is PathSegment => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        problems.push({ path: [...path, key], unknownKey: spelling === 'toml' ? camelToSnake(key) : key });
      }
      continue;
    }
    const id = formatPath(path);
    if (seen.has(id)) continue;
    seen.add(id);
    // A custom check (a refine, e.g. "a tls listener needs cert_file") says it best itself.
    if (issue.code === 'custom') {
      problems.push({ path, message: issue.message });
      continue;
    }
    const expected = describeSchema(schemaAt(configSchema, path));
    const got = describeValue(valueAt(input, path));
    problems.push({ path, message: expected === undefined ? issue.message : `expected ${expected}, got ${got}` });
  }
  return problems;
}

function spellPath(path: readonly PathSegment[], spelling: Spelling): PathSegment[] {
  return spelling === 'toml' ? path.map((s) => (typeof s === 'string' ? camelToSnake(s) : s)) : [...path];
}

/** The path as the reader wrote it and the sentence describing what is wrong. */
function render(problem: Problem, spelling: Spelling): { path: PathSegment[]; message: string } {
  if (problem.unknownKey === undefined) {
    return { path: spellPath(problem.path, spelling), message: problem.message ?? 'invalid value' };
  }
  const parent = problem.path.slice(0, -1);
  const key = problem.unknownKey;
  const known = objectKeys(schemaAt(configSchema, parent)).map((k) => (spelling === 'toml' ? camelToSnake(k) : k));
  const suggestion = suggestKey(key, known);
  let message = 'unknown key';
  if (suggestion !== undefined) message += `; did you mean ${suggestion}?`;
  else if (known.length > 0) message += `; expected one of ${known.join(', ')}`;
  if (spelling === 'toml' && !isSnakeKey(key) && suggestion === undefined) message += ' (keys are snake_case)';
  return { path: [...spellPath(parent, spelling), key], message };
}

const plural = (n: number): string => (n === 1 ? '1 problem' : `${n} problems`);

/** Build the ERR_CONFIG_INVALID error: one line per problem, sorted by line in a file. */
function invalid(problems: readonly Problem[], spelling: Spelling, file?: { name: string; text: string }): Error {
  const rendered = problems.map((p) => render(p, spelling));
  let lines: string[];
  if (file === undefined) {
    lines = rendered.map((r) => `${formatPath(r.path) || '(root)'}: ${r.message}`);
  } else {
    const keyLines = scanKeyLines(file.text);
    lines = rendered
      .map((r) => ({ ...r, line: lineOf(keyLines, r.path) }))
      .sort((a, b) => (a.line ?? 0) - (b.line ?? 0))
      .map((r) => `${file.name}${r.line === undefined ? '' : `:${r.line}`}: ${formatPath(r.path) || '(root)'}: ${r.message}`);
  }
  if (lines.length === 1) return ternError('ERR_CONFIG_INVALID', lines[0]);
  const where = file === undefined ? '' : ` in ${file.name}`;
  return ternError('ERR_CONFIG_INVALID', `${plural(lines.length)}${where}:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Schema + cross-field checks; problems come back instead of throwing. */
function validate(input: unknown, problems: Problem[], spelling: Spelling): TernConfig | undefined {
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    problems.push(...schemaProblems(parsed.error.issues, input, spelling));
    return undefined;
  }
  if (problems.length > 0) return undefined;
  const crossField: ConfigIssue[] = checkConfig(parsed.data);
  problems.push(...crossField);
  return problems.length > 0 ? undefined : parsed.data;
}

/**
 * Validate programmatic options (camelCase, as `createBroker` takes them)
 * and fill in defaults. Throws ERR_CONFIG_INVALID listing every problem.
 */
export function resolveConfig(input: TernConfigInput = {}): TernConfig {
  const problems: Problem[] = [];
  const config = validate(input, problems, 'code');
  if (config === undefined) throw invalid(problems, 'code');
  return deepFreeze(config);
}

/**
 * Parse a TOML configuration text. `fileName` only names the source in
 * error messages. Throws ERR_CONFIG_PARSE (TOML syntax, with line and
 * column) or ERR_CONFIG_INVALID (every schema/cross-field problem).
 */
export function parseConfigText(text: string, fileName: string): TernConfig {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = err.message.split('\n')[0] ?? err.message;
      throw ternError('ERR_CONFIG_PARSE', `${fileName}:${err.line}:${err.column}: ${reason}`, { cause: err });
    }
    throw err;
  }
  const problems: Problem[] = [];
  const input = camelizeKeys(raw, [], problems);
  const config = validate(input, problems, 'toml');
  if (config === undefined) throw invalid(problems, 'toml', { name: fileName, text });
  return deepFreeze(config);
}

/** Read and parse a TOML configuration file; ERR_CONFIG_READ if it cannot be read. */
export async function loadConfigFile(path: string): Promise<TernConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw ternError('ERR_CONFIG_READ', `${path}: ${describeReadError(reason)}`, { cause: err });
  }
  return parseConfigText(text, path);
}

function describeReadError(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'no such file (ENOENT)';
    case 'EACCES':
    case 'EPERM':
      return `permission denied (${code})`;
    case 'EISDIR':
      return 'is a directory (EISDIR)';
    default:
      return code;
  }
}
