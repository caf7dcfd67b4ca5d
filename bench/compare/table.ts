/**
 * Medians over the repetitions and each broker's ratio to Mosquitto, as a
 * Markdown table. A cell reads `median ±spread` where the spread is half the
 * min..max range in % of the median; `*` marks a cell with a suspect run
 * (failed connects, errors, incomplete deliveries), `!` one with a failed run.
 */
import type { BrokerName } from './brokers.js';
import type { RunRecord } from './runner.js';
import type { ScenarioDef } from './scenarios.js';

export interface SummaryRow {
  scenario: string;
  title: string;
  metric: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  /** Per broker: the median, the raw values of the repetitions, and flags. */
  brokers: Partial<Record<BrokerName, { median: number | null; values: number[]; spreadPct: number | null; suspect: boolean; failed: boolean }>>;
  /** Per broker: median / Mosquitto's median (null without Mosquitto). */
  ratioToMosquitto: Partial<Record<BrokerName, number | null>>;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

export function summarise(scenarios: readonly ScenarioDef[], runs: readonly RunRecord[], brokers: readonly BrokerName[]): SummaryRow[] {
  const rows: SummaryRow[] = [];
  for (const s of scenarios) {
    const mine = runs.filter((r) => r.scenario === s.id);
    if (mine.length === 0) continue;
    for (const m of s.metrics) {
      const row: SummaryRow = { scenario: s.id, title: s.title, metric: m.key, label: m.label, unit: m.unit, better: m.better, brokers: {}, ratioToMosquitto: {} };
      for (const b of brokers) {
        const reps = mine.filter((r) => r.broker === b);
        if (reps.length === 0) continue;
        const values = reps.map((r) => r.metrics[m.key]).filter((v): v is number => typeof v === 'number');
        const med = median(values);
        const spread = med !== null && med !== 0 && values.length > 1 ? ((Math.max(...values) - Math.min(...values)) / 2 / Math.abs(med)) * 100 : null;
        row.brokers[b] = {
          median: med,
          values,
          spreadPct: spread === null ? null : Math.round(spread * 10) / 10,
          suspect: reps.some((r) => r.problems.length > 0),
          failed: reps.some((r) => r.error !== null),
        };
      }
      const base = row.brokers.mosquitto?.median ?? null;
      for (const b of brokers) {
        const v = row.brokers[b]?.median ?? null;
        if (row.brokers[b] === undefined) continue;
        row.ratioToMosquitto[b] = base !== null && base !== 0 && v !== null ? Math.round((v / base) * 100) / 100 : null;
      }
      rows.push(row);
    }
  }
  return rows;
}

function fmt(v: number | null, unit: string): string {
  if (v === null) return 'n/a';
  if (unit === 'ms') return v.toFixed(v < 10 ? 2 : 1);
  if (unit === 'KiB') return v.toFixed(2);
  if (Math.abs(v) >= 10_000) return `${(v / 1000).toFixed(1)}k`;
  return Math.round(v).toLocaleString('en-US');
}

export function markdownTable(rows: readonly SummaryRow[], brokers: readonly BrokerName[]): string {
  const others = brokers.filter((b) => b !== 'mosquitto');
  const withRatio = brokers.includes('mosquitto');
  const head = ['scenario', 'metric', ...brokers, ...(withRatio ? others.map((b) => `${b} / mosquitto`) : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    const cells = [r.title, `${r.label} ${r.better === 'higher' ? '↑' : '↓'}${r.unit === 'ms' || r.unit === 'KiB' ? ` (${r.unit})` : ''}`];
    for (const b of brokers) {
      const c = r.brokers[b];
      if (c === undefined) {
        cells.push('–');
        continue;
      }
      const flag = c.failed ? ' !' : c.suspect ? ' *' : '';
      cells.push(`${fmt(c.median, r.unit)}${c.spreadPct !== null ? ` ±${c.spreadPct.toFixed(0)}%` : ''}${flag}`);
    }
    if (withRatio) {
      for (const b of others) {
        const ratio = r.ratioToMosquitto[b];
        cells.push(ratio === undefined ? '–' : ratio === null ? 'n/a' : `${ratio.toFixed(2)}x`);
      }
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}
