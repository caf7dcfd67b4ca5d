/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`): self time per
 * function, self time per file, and inclusive time of Tern's own functions.
 *
 *   node --import tsx bench/compare/profile.ts FILE.cpuprofile [--top 25]
 *
 * Percentages are of the busy time (the samples that are not "(idle)").
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ROOT } from './proc.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  name: string;
  selfMs: number;
  selfPct: number;
  totalMs?: number;
  totalPct?: number;
}

export interface ProfileSummary {
  file: string;
  wallMs: number;
  busyMs: number;
  idleMs: number;
  gcMs: number;
  programMs: number;
  topSelf: ProfileEntry[];
  byFile: ProfileEntry[];
  /** Inclusive time of functions in src/ (each sample counted once per function). */
  topTernInclusive: ProfileEntry[];
}

function shortUrl(url: string): string {
  if (url === '') return '';
  let path = url;
  if (url.startsWith('file://')) {
    try {
      path = relative(ROOT, fileURLToPath(url));
    } catch {
      path = url;
    }
  }
  const nm = path.lastIndexOf('node_modules/');
  return nm >= 0 ? path.slice(nm) : path;
}

function keyOf(f: CallFrame): string {
  const url = shortUrl(f.url);
  const fn = f.functionName === '' ? '(anonymous)' : f.functionName;
  if (url === '') return fn;
  // Code loaded through tsx reports every function on line 1: leave the line out then.
  return f.lineNumber > 0 ? `${url}:${fn}:${f.lineNumber + 1}` : `${url}:${fn}`;
}

const round = (v: number): number => Math.round(v * 10) / 10;

export function summariseProfile(path: string, top = 25): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const self = new Map<string, number>();
  const files = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let wall = 0;
  let idle = 0;
  let gc = 0;
  let program = 0;
  const seen = new Set<string>();
  for (let i = 0; i < profile.samples.length; i++) {
    // DevTools attributes the next delta to a sample.
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    wall += dt;
    const name = node.callFrame.functionName;
    if (name === '(idle)') {
      idle += dt;
      continue;
    }
    if (name === '(garbage collector)') gc += dt;
    if (name === '(program)') program += dt;
    const key = keyOf(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + dt);
    const file = shortUrl(node.callFrame.url) || name;
    files.set(file, (files.get(file) ?? 0) + dt);
    seen.clear();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (!shortUrl(f.url).startsWith('src/')) continue;
      const k = keyOf(f);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const busy = wall - idle;
  const pct = (ms: number): number => (busy > 0 ? round((ms / busy) * 100) : 0);
  const list = (m: Map<string, number>, n: number, total = false): ProfileEntry[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, ms]) => (total ? { name, selfMs: 0, selfPct: 0, totalMs: round(ms), totalPct: pct(ms) } : { name, selfMs: round(ms), selfPct: pct(ms) }));
  return {
    file: path,
    wallMs: round(wall),
    busyMs: round(busy),
    idleMs: round(idle),
    gcMs: round(gc),
    programMs: round(program),
    topSelf: list(self, top),
    byFile: list(files, 15),
    topTernInclusive: list(inclusive, 20, true),
  };
}

export function profileText(s: ProfileSummary): string {
  const lines = [
    `profile ${s.file}`,
    `  wall ${s.wallMs} ms, busy ${s.busyMs} ms (${s.wallMs > 0 ? Math.round((s.busyMs / s.wallMs) * 100) : 0}%), GC ${s.gcMs} ms, (program) ${s.programMs} ms`,
    '  top self time (% of busy):',
    ...s.topSelf.map((e) => `    ${e.selfPct.toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.name}`),
    '  self time by file:',
    ...s.byFile.map((e) => `    ${e.selfPct.toFixed(1).padStart(5)}%  ${e.name}`),
    '  inclusive time, Tern functions:',
    ...s.topTernInclusive.map((e) => `    ${(e.totalPct ?? 0).toFixed(1).padStart(5)}%  ${e.name}`),
  ];
  return `${lines.join('\n')}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: 'string', default: '25' } } });
  for (const file of positionals) process.stdout.write(profileText(summariseProfile(file, Number(values.top))));
}
