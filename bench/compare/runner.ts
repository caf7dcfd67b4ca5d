/**
 * One run: a fresh broker pinned to core 0, the scenario's load processes
 * pinned to core 1, CPU and RSS of both sampled from /proc meanwhile, then
 * the broker is stopped and the figures extracted. A fresh broker per run
 * keeps runs independent (no retained messages, sessions or heap growth
 * carried over) and makes the idle scenario's RSS baseline clean.
 */
import os from 'node:os';
import { startBroker, type BrokerName } from './brokers.js';
import { lastJsonLine, pinned, ProcSampler, readRssKiB, runChild, canPin, type CpuUse } from './proc.js';
import type { LoadContext, ScenarioDef } from './scenarios.js';

export const BROKER_CORE = 0;
export const LOAD_CORE = 1;
/** A load process's start (module loading, TypeScript transform, connects) is left out of its CPU peak. */
const LOAD_STARTUP_MS = 2000;

export interface RunSettings {
  version: 4 | 5;
  durationS: number;
  idleConns: number;
  retained: number;
  /** Tern only: write a CPU profile of the broker here. */
  cpuProfDir?: string;
  /** TCP_NODELAY on Mosquitto and Aedes too. */
  noDelay: boolean;
}

export interface RunRecord {
  scenario: string;
  broker: BrokerName;
  rep: number;
  startedAt: string;
  /** 1-minute load average when the run started: how shared the machine was. */
  loadAvg1: number;
  pinned: boolean;
  /** Figures for the table (and a few more). */
  metrics: Record<string, number | null>;
  /** Reasons the figures are suspect; empty when the run was clean. */
  problems: string[];
  /** The run could not be made at all (broker did not start, load crashed). */
  error: string | null;
  /** CPU use (% of one core) and peak RSS of the broker and of each load process. */
  processes: Record<string, CpuUse & { peakRssKiB: number }>;
  /** The raw JSON result of each load process. */
  results: Array<Record<string, unknown>>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runOne(s: ScenarioDef, name: BrokerName, rep: number, settings: RunSettings): Promise<RunRecord> {
  const record: RunRecord = {
    scenario: s.id,
    broker: name,
    rep,
    startedAt: new Date().toISOString(),
    loadAvg1: Math.round((os.loadavg()[0] ?? 0) * 100) / 100,
    pinned: canPin(),
    metrics: {},
    problems: [],
    error: null,
    processes: {},
    results: [],
  };
  let broker;
  try {
    broker = await startBroker({ name, storage: s.storage, core: BROKER_CORE, noDelay: settings.noDelay, ...(settings.cpuProfDir ? { cpuProfDir: settings.cpuProfDir } : {}) });
  } catch (err) {
    record.error = (err as Error).message;
    return record;
  }
  const ctx: LoadContext = { port: broker.port, version: settings.version, durationS: settings.durationS, idleConns: settings.idleConns, retained: settings.retained };
  const sampler = new ProcSampler();
  try {
    await sleep(300); // let the broker settle after its first accept
    const rssBeforeKiB = readRssKiB(broker.pid);
    sampler.watch('broker', broker.pid);
    const timeoutMs = settings.durationS * 1000 + 180_000;
    const outputs = await Promise.all(
      s.loads(ctx).map((argv, i) => {
        const [cmd, args] = pinned(LOAD_CORE, process.execPath, argv);
        return runChild(cmd, args, { timeoutMs, onSpawn: (pid) => sampler.watch(`load${i + 1}`, pid, LOAD_STARTUP_MS) });
      }),
    );
    record.processes = sampler.stop();
    for (const [i, out] of outputs.entries()) {
      const json = lastJsonLine(out.stdout);
      if (json === null) throw new Error(`load ${i + 1} exited ${out.code} without a result: ${out.stderr.slice(-1500)}`);
      record.results.push(json);
    }
    record.metrics = s.extract(record.results, { rssBeforeKiB, rssPeakKiB: record.processes.broker?.peakRssKiB ?? null }, ctx);
    record.problems = s.check(record.results);
  } catch (err) {
    record.processes = sampler.stop();
    record.error = `${(err as Error).message}\n${broker.logTail().slice(-1000)}`;
  } finally {
    await broker.stop();
  }
  return record;
}
