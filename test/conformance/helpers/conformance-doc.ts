/**
 * Builds docs/conformance.md: every normative statement of MQTT 5.0 and
 * MQTT 3.1.1 (helpers/statements.ts), with the tests whose names cite it.
 *
 *   node --import tsx test/conformance/helpers/conformance-doc.ts --write
 *
 * Convention: tests in test/conformance/ and test/integration/v5-*.test.ts
 * cite MQTT 5.0 statement ids, except test/conformance/v311-*.test.ts; those
 * and the other integration, hardening and transport tests cite MQTT 3.1.1
 * ids (the numbering differs between the two).
 * A test marked `todo` shows the statement as NOT MET.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { V311, V5, type Statement } from './statements.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DOC_PATH = join(ROOT, 'docs', 'conformance.md');

export interface CitingTest {
  /** Path relative to the repository root. */
  file: string;
  /** The test name (or the name of a table case inside a test family), as written. */
  name: string;
  /** The `todo` reason when the test is marked todo. */
  todo: string | undefined;
  /** Statement ids cited in the name. */
  ids: string[];
}

async function testFiles(dir: string, filter: (name: string) => boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(join(ROOT, dir));
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.test.ts') && filter(n))
    .sort()
    .map((n) => join(ROOT, dir, n));
}

/** The test files whose names cite MQTT 5.0 ids, and those citing MQTT 3.1.1 ids. */
export async function sources(): Promise<{ v5: string[]; v311: string[] }> {
  const transport = await testFiles('test/transport', () => true);
  // WebSocket statements (6.0.0-x) read the same in both versions.
  const websocket = await testFiles('test/conformance', (n) => n.startsWith('websocket'));
  return {
    v5: [
      ...(await testFiles('test/conformance', (n) => !n.startsWith('v311-'))),
      ...(await testFiles('test/integration', (n) => n.startsWith('v5-'))),
      ...transport,
    ],
    v311: [
      ...(await testFiles('test/integration', (n) => !n.startsWith('v5-'))),
      ...(await testFiles('test/conformance', (n) => n.startsWith('v311-'))),
      ...(await testFiles('test/hardening', () => true)),
      ...transport,
      ...websocket,
    ],
  };
}

// A string literal that opens a test call or a table row, and cites a statement.
const NAMED = /(\btest\(\s*|\[\s*)(['"`])((?:\\.|(?!\2)[^\\])*?\[MQTT[- ](?:\\.|(?!\2)[^\\])*?)\2/g;
const ID = /MQTT-(\d+\.\d+\.\d+-\d+)/g;
const TODO = /todo:\s*'((?:\\.|[^'\\])*)'/;

/** Every test (or table case) in `file` whose name cites a statement id. */
export async function citingTests(file: string): Promise<CitingTest[]> {
  const text = await readFile(file, 'utf8');
  const out: CitingTest[] = [];
  for (const m of text.matchAll(NAMED)) {
    const isCase = (m[1] ?? '').startsWith('[');
    const name = (isCase ? 'case: ' : '') + (m[3] ?? '').replace(/\\(['"`])/g, '$1');
    const ids = [...name.matchAll(ID)].map((x) => `MQTT-${x[1]}`);
    // Options follow the name: look up to the test body (or the next test) for a todo.
    const end = (m.index ?? 0) + m[0].length;
    const rest = text.slice(end, end + 600);
    const stops = [rest.indexOf('async'), rest.indexOf('test('), rest.indexOf('\n  test')].filter((i) => i >= 0);
    const window = rest.slice(0, stops.length > 0 ? Math.min(...stops) : rest.length);
    const todo = TODO.exec(window)?.[1];
    out.push({ file: relative(ROOT, file), name, todo, ids });
  }
  return out;
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

interface Row {
  statement: Statement;
  tests: CitingTest[];
}

function status(row: Row): string {
  const [, , note] = row.statement;
  const passing = row.tests.filter((t) => t.todo === undefined);
  const failing = row.tests.filter((t) => t.todo !== undefined);
  if (failing.length > 0) return passing.length > 0 ? '**partly NOT MET**' : '**NOT MET**';
  if (passing.length > 0) return 'tested';
  if (note === 'client') return 'not applicable: client requirement';
  if (note !== undefined) return cell(note);
  return 'untested';
}

function table(rows: Row[]): string[] {
  const lines = ['| Statement | Summary | Status | Tests |', '|---|---|---|---|'];
  for (const row of rows) {
    const [id, summary] = row.statement;
    const tests = row.tests.map((t) => `${t.todo !== undefined ? '(todo) ' : ''}\`${t.file.replace(/^test\//, '')}\`: ${cell(t.name)}`).join('<br>');
    lines.push(`| ${id} | ${cell(summary)} | ${status(row)} | ${tests} |`);
  }
  return lines;
}

function rowsFor(statements: readonly Statement[], tests: CitingTest[]): Row[] {
  return statements.map((statement) => ({ statement, tests: tests.filter((t) => t.ids.includes(statement[0])) }));
}

function counts(rows: Row[]): string {
  const by = new Map<string, number>();
  for (const r of rows) {
    const s = status(r).replace(/\*/g, '');
    const key = s.startsWith('not applicable') || s.startsWith('met by') ? 'not applicable / met by design' : s.startsWith('untested') ? 'untested' : s;
    by.set(key, (by.get(key) ?? 0) + 1);
  }
  return [...by.entries()].map(([k, v]) => `${v} ${k}`).join(', ');
}

/** The whole document. */
export async function buildDoc(): Promise<string> {
  const src = await sources();
  const v5Tests = (await Promise.all(src.v5.map(citingTests))).flat();
  const v311Tests = (await Promise.all(src.v311.map(citingTests))).flat();
  const v5Rows = rowsFor(V5, v5Tests);
  const v311Rows = rowsFor(V311, v311Tests);
  const todos = [...v5Tests, ...v311Tests].filter((t) => t.todo !== undefined);

  const lines = [
    '# Conformance: MQTT 5.0 and MQTT 3.1.1',
    '',
    '<!-- Generated by `node --import tsx test/conformance/helpers/conformance-doc.ts --write`; edit the tests or',
    '     test/conformance/helpers/statements.ts, not this file. -->',
    '',
    'Every normative statement a server must meet, with the tests that show it. Summaries are ours; the',
    'statement ids are those of the OASIS specifications. Tests cite ids in their names: files under',
    '`test/conformance/` and `test/integration/v5-*.test.ts` cite **MQTT 5.0** ids (raw packets, built by an',
    'independent encoder, or MQTT.js with protocolVersion 5); `test/conformance/v311-*.test.ts` and the other',
    'integration, hardening and transport tests cite **MQTT 3.1.1** ids. A test marked `todo` documents a',
    'requirement Tern does not meet yet: the statement is then **NOT MET**, and the todo text says what the',
    'test observed (`bug:` for implemented behaviour that is wrong, `not implemented:` for missing features).',
    '',
    'Status: *tested* (a passing test shows it), **NOT MET** (its tests are todo), *untested* (a server',
    'requirement no test cites yet), or the reason the statement needs no server test.',
    '',
    `MQTT 5.0: ${V5.length} statements: ${counts(v5Rows)}.`,
    `MQTT 3.1.1: ${V311.length} statements: ${counts(v311Rows)}.`,
    '',
    '## Open items (tests marked todo)',
    '',
    ...todos.map((t) => `- \`${t.file.replace(/^test\//, '')}\`: ${t.name}<br>*${t.todo}*`),
    '',
    '## MQTT 5.0',
    '',
    ...table(v5Rows),
    '',
    '## MQTT 3.1.1',
    '',
    ...table(v311Rows),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const doc = await buildDoc();
  if (process.argv.includes('--write')) await writeFile(DOC_PATH, doc);
  else process.stdout.write(doc);
}
