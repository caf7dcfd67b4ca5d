/**
 * `tern bench <scenario> [options]`: an MQTT load generator in the manner
 * of emqtt-bench, built on Tern's own client (src/client). Progress goes to
 * stderr once a second; the summary (or, with --json, one JSON object) to
 * stdout.
 *
 * Exit codes: 0 ran cleanly; 1 some client failed to connect or an error
 * occurred during the run; 2 bad command line.
 */
import type { BenchIo } from '../bench/run.js';
import { runScenario } from '../bench/run.js';
import { USAGE, parseBenchArgs, type BenchOptions } from '../bench/options.js';
import { summaryText } from '../bench/report.js';
import { isTernError } from '../errors.js';

export async function runBench(argv: string[], io: BenchIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let options: BenchOptions | null;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!isTernError(err, 'ERR_CLI_USAGE')) throw err;
    io.stderr.write(`tern bench: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (options === null) {
    io.stdout.write(USAGE);
    return 0;
  }
  // Ctrl-C ends the run early but still prints the result.
  const abort = new AbortController();
  const onSigint = (): void => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const result = await runScenario(options, io, abort.signal);
    io.stdout.write(options.json ? `${JSON.stringify(result)}\n` : summaryText(result, options));
    return result.clients.failed > 0 || result.errors > 0 || result.clients.connected === 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
