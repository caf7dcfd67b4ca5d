/**
 * `npm run bench` (node --import tsx bench/run.ts): Tern's benchmark suite.
 *
 *   npm run bench                          micro-benchmarks + every scenario against Tern
 *   npm run bench -- --compare             Tern vs Mosquitto vs Aedes, medians and ratios
 *   npm run bench -- --compare --only pairs,fanout --qos 0 --duration 5 --reps 3
 *   npm run bench -- --smoke               1 s per run, Tern only (a check that nothing rotted)
 *   npm run bench -- --help
 *
 * Every end-to-end run starts a fresh broker pinned to core 0 and drives it
 * with the same generator (`tern bench ... --json`, or a driver in
 * bench/compare/) pinned to core 1. Brokers are interleaved inside each
 * repetition (for each scenario: for rep: for broker), so drift on a shared
 * machine hits all of them alike; the table reports medians and ratios to
 * Mosquitto. Results, with every raw number, the git commit and machine
 * info, go to bench/results/<date>-<sha>.json. See bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, relative } from 'node:path';
import { brokerVersions, ensureMosquitto, type BrokerName } from './compare/brokers.js';
import { microLine, runMicro } from './compare/micro.js';
import { parseRunArgs, type RunOptions } from './compare/options.js';
import { canPin, ROOT, ternCli } from './compare/proc.js';
import { summariseProfile, profileText, type ProfileSummary } from './compare/profile.js';
import { runOne, type RunRecord } from './compare/runner.js';
import type { ScenarioDef } from './compare/scenarios.js';
import { markdownTable, median, summarise } from './compare/table.js';

const out = (text: string): void => {
  process.stdout.write(text);
};
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return '';
  }
}

function machineInfo(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    hostname: os.hostname(),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    loadAvgAtStart: os.loadavg().map((v) => Math.round(v * 100) / 100),
    pinned: canPin() ? { broker: 'taskset -c 0', load: 'taskset -c 1' } : null,
    ternCli: ternCli().join(' '),
  };
}

function resultsPath(sha: string): string {
  const dir = join(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  let path = join(dir, `${date}-${sha}.json`);
  for (let n = 2; existsSync(path); n++) path = join(dir, `${date}-${sha}-${n}.json`);
  return path;
}

function describe(r: RunRecord, s: ScenarioDef): string {
  if (r.error !== null) return `FAILED: ${r.error.split('\n')[0]!}`;
  const figures = s.metrics.map((m) => {
    const v = r.metrics[m.key];
    return `${m.label} ${v === null || v === undefined ? 'n/a' : m.unit === 'ms' || m.unit === 'KiB' ? v.toFixed(2) : Math.round(v).toLocaleString('en-US')}`;
  });
  const cpu = Object.entries(r.processes)
    .map(([name, p]) => `${name} ${p.peakPct}%`)
    .join(' ');
  return `${figures.join(', ')}  [cpu peak: ${cpu}]${r.problems.length > 0 ? `  PROBLEMS: ${r.problems.join('; ')}` : ''}`;
}

/** One generator against two splitting the load: does the broker's figure move? */
function generatorCheck(runs: readonly RunRecord[], brokers: readonly BrokerName[]): Array<Record<string, unknown>> {
  const rows: Array<Record<string, unknown>> = [];
  for (const b of brokers) {
    const pick = (id: string): RunRecord[] => runs.filter((r) => r.scenario === id && r.broker === b && r.error === null);
    const one = pick('pairs-q0');
    const two = pick('pairs-q0-2gen');
    if (one.length === 0 || two.length === 0) continue;
    const m1 = median(one.map((r) => r.metrics.recvRate ?? 0));
    const m2 = median(two.map((r) => r.metrics.recvRate ?? 0));
    const brokerCpu = median(one.map((r) => r.processes.broker?.peakPct ?? 0));
    const loadCpu = median(one.map((r) => r.processes.load1?.peakPct ?? 0));
    rows.push({
      broker: b,
      oneGenerator: m1,
      twoGenerators: m2,
      changePct: m1 !== null && m2 !== null && m1 > 0 ? Math.round(((m2 - m1) / m1) * 1000) / 10 : null,
      brokerCpuPeakPct: brokerCpu,
      generatorCpuPeakPct: loadCpu,
    });
  }
  return rows;
}

async function profileRun(o: RunOptions, s: ScenarioDef): Promise<{ record: RunRecord; summary: ProfileSummary | null; file: string | null }> {
  const dir = o.profileDir ?? mkdtempSync(join(os.tmpdir(), 'tern-bench-prof-'));
  mkdirSync(dir, { recursive: true });
  const before = new Set(readdirSync(dir));
  const record = await runOne(s, 'tern', 1, { version: o.version, noDelay: o.noDelay, durationS: o.durationS, idleConns: o.idleConns, retained: o.retained, cpuProfDir: dir });
  // Under tsx the loader's worker thread writes a small profile of its own: take the largest.
  const created = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile') && !before.has(f))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  const file = created[0] ?? null;
  return { record, summary: file === null ? null : summariseProfile(file), file };
}

async function main(): Promise<number> {
  let o: RunOptions | null;
  try {
    o = parseRunArgs(process.argv.slice(2), out);
  } catch (err) {
    log(`bench: ${(err as Error).message}  (npm run bench -- --help)`);
    return 2;
  }
  if (o === null) return 0;

  const sha = git(['rev-parse', '--short', 'HEAD']) || 'unknown';
  const dirty = git(['status', '--porcelain']).split('\n').filter((l) => l.length > 0).length;
  let brokers = o.brokers;
  if (brokers.includes('mosquitto') && !ensureMosquitto(log)) brokers = brokers.filter((b) => b !== 'mosquitto');
  const machine = machineInfo();
  if (!canPin()) log('note: taskset or a second core is missing; broker and load are not pinned');

  // ---- micro-benchmarks ----
  const micro: Array<Record<string, unknown>> = [];
  for (const name of o.micro) {
    log(`micro: ${name}`);
    try {
      const lines = await runMicro(name, { quick: o.smoke, core: canPin() ? 0 : null });
      for (const l of lines) out(`${microLine(l)}\n`);
      micro.push(...lines);
    } catch (err) {
      log(`micro ${name} FAILED: ${(err as Error).message}`);
      micro.push({ bench: name, error: (err as Error).message });
    }
  }

  // ---- end-to-end: for each scenario, for rep, for broker ----
  const runs: RunRecord[] = [];
  const plan = o.scenarios.flatMap((s) => Array.from({ length: o.reps }, (_, i) => s.brokers.filter((b) => brokers.includes(b)).map((b) => ({ s, rep: i + 1, b }))).flat());
  for (const [k, { s, rep, b }] of plan.entries()) {
    const record = await runOne(s, b, rep, { version: o.version, noDelay: o.noDelay, durationS: o.durationS, idleConns: o.idleConns, retained: o.retained });
    runs.push(record);
    log(`[${k + 1}/${plan.length}] ${s.id} rep ${rep} ${b}: ${describe(record, s)}`);
  }

  let table = '';
  const summary = summarise(o.scenarios, runs, brokers);
  if (runs.length > 0) {
    table = markdownTable(summary, brokers);
    out(`\n${table}`);
    out(`medians of ${o.reps} rep(s), ${o.durationS} s each; ±: half the min..max range; * suspect run, ! failed run\n`);
  }
  const genCheck = generatorCheck(runs, brokers);
  for (const g of genCheck) {
    out(
      `generator check (${String(g.broker)}): pairs QoS 0 one generator ${Math.round(Number(g.oneGenerator)).toLocaleString('en-US')}/s, ` +
        `two ${Math.round(Number(g.twoGenerators)).toLocaleString('en-US')}/s (${String(g.changePct)}%); ` +
        `broker cpu peak ${String(g.brokerCpuPeakPct)}%, generator ${String(g.generatorCpuPeakPct)}%\n`,
    );
  }

  // ---- optional CPU profile of Tern ----
  let profile: Record<string, unknown> | null = null;
  if (o.profile !== null) {
    log(`profile: tern under ${o.profile.id} with --cpu-prof`);
    const p = await profileRun(o, o.profile);
    log(`profile run: ${describe(p.record, o.profile)}`);
    if (p.summary !== null) out(`\n${profileText(p.summary)}`);
    else log('profile: no .cpuprofile was written (did the broker exit cleanly?)');
    profile = { scenario: o.profile.id, file: p.file, run: p.record, summary: p.summary };
  }

  // ---- results file ----
  const failed = runs.filter((r) => r.error !== null).length + micro.filter((m) => 'error' in m).length;
  const suspect = runs.filter((r) => r.problems.length > 0).length;
  if (o.out !== null) {
    const path = o.out === 'default' ? resultsPath(sha) : o.out;
    const doc = {
      date: new Date().toISOString(),
      git: { sha, commit: git(['rev-parse', 'HEAD']), branch: git(['rev-parse', '--abbrev-ref', 'HEAD']), dirtyFiles: dirty },
      machine: { ...machine, loadAvgAtEnd: os.loadavg().map((v) => Math.round(v * 100) / 100) },
      versions: brokerVersions(),
      options: {
        argv: process.argv.slice(2),
        compare: o.compare,
        smoke: o.smoke,
        brokers,
        scenarios: o.scenarios.map((s) => s.id),
        mqttVersion: o.version,
        noDelay: o.noDelay,
        durationS: o.durationS,
        reps: o.reps,
        idleConns: o.idleConns,
        retained: o.retained,
      },
      summary,
      table,
      generatorCheck: genCheck,
      micro,
      runs,
      profile,
    };
    writeFileSync(path, `${JSON.stringify(doc, null, 2)}\n`);
    log(`results: ${relative(process.cwd(), path)}`);
  }
  if (failed > 0) log(`${failed} run(s) failed`);
  if (suspect > 0) log(`${suspect} run(s) with problems (see PROBLEMS above)`);
  // A smoke run must be clean; a full run fails only when runs could not be made.
  return failed > 0 || (o.smoke && suspect > 0) ? 1 : 0;
}

process.exitCode = await main();
