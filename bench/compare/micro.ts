/**
 * The in-process micro-benchmarks, each its own child process (so one
 * cannot warm the JIT or the heap for the next), collected as JSON lines:
 * codec (bench/codec.bench.ts), trie (bench/trie.bench.ts), store
 * (bench/persistence.bench.ts) and cluster (bench/cluster.bench.ts: not
 * pinned, its three nodes, redis-server and generator share every core).
 */
import type { MicroName } from './scenarios.js';
import { pinned, runChild, tsScript } from './proc.js';

export interface MicroOptions {
  /** Short runs: smoke mode. */
  quick: boolean;
  /** Core to pin to (null = not pinned). */
  core: number | null;
}

const SCRIPTS: Record<MicroName, string> = {
  codec: 'bench/codec.bench.ts',
  trie: 'bench/trie.bench.ts',
  store: 'bench/persistence.bench.ts',
  cluster: 'bench/cluster.bench.ts',
};

export async function runMicro(name: MicroName, o: MicroOptions): Promise<Array<Record<string, unknown>>> {
  const args = [...tsScript(SCRIPTS[name])];
  if ((name === 'store' || name === 'cluster') && o.quick) args.push('--quick');
  if (name === 'cluster') args.push('--json');
  const [cmd, argv] = pinned(name === 'cluster' ? null : o.core, process.execPath, args);
  const env = { ...process.env, BENCH_MS: o.quick ? '50' : '400', TRIE_MAX: o.quick ? '10000' : '100000' };
  const { code, stdout, stderr } = await runChild(cmd, argv, { timeoutMs: 600_000, env });
  if (code !== 0) throw new Error(`${SCRIPTS[name]} exited ${code}: ${stderr.slice(-2000)}`);
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** One printable line per micro result. */
export function microLine(r: Record<string, unknown>): string {
  const n = (v: unknown): string => (typeof v === 'number' ? Math.round(v).toLocaleString('en-US') : String(v));
  switch (r.bench) {
    case 'codec':
      return `codec  ${String(r.impl).padEnd(11)} ${String(r.op).padEnd(11)} v${String(r.level)} ${String(r.payload).padStart(5)} B  ${n(r.opsPerSec).padStart(12)} ops/s`;
    case 'trie':
      return `trie   ${String(r.mix).padEnd(14)} ${n(r.filters).padStart(8)} filters  cache ${String(r.cache ?? 'on').padEnd(3)}  ${n(r.nsPerMatch).padStart(6)} ns/match  ${String(r.entriesPerMatch).padStart(7)} entries/match  ${n(r.addNsPerOp).padStart(6)} ns/add`;
    case 'cluster': {
      const s = r.summary as Record<string, unknown>;
      const cpu = s.cpuPerDeliveryUs as Record<string, number | null>;
      return (
        `cluster  one node ${n(s.oneNodeDeliveriesPerS)} deliveries/s, three nodes cross-node ${String(s.crossVsOne)}x, same-node ${String(s.sameVsOne)}x; ` +
        `CPU µs/delivery one node ${String(cpu['one-node'])}, cross ${String(cpu.cross)}, same ${String(cpu.same)}; ` +
        `Redis calls per forwarded message ${String(s.redisCallsPerForwarded)} (at 1,000 msg/s: ${String(s.redisCallsPerForwardedPaced)}), ` +
        `per same-node message ${String(s.redisCallsPerMessageSameNode)}`
      );
    }
    default: {
      const { bench, sha: _sha, node: _node, cpu: _cpu, cores: _cores, ...rest } = r;
      return `${String(bench)}  ${JSON.stringify(rest)}`;
    }
  }
}
