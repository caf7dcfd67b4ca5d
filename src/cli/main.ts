#!/usr/bin/env node
/**
 * The `tern` executable (package.json bin -> dist/cli/main.js).
 * Exit codes: 0 ok, 1 failure (bad config, cannot listen), 2 usage error.
 * Errors Tern raises on purpose print as one message, never a stack trace.
 */
import { isTernError } from '../errors.js';
import { parseCliArgs, USAGE } from './args.js';
import type { CommandOutput } from './check-config.js';
import { packageVersion } from './version.js';

const output: CommandOutput = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Run one command; undefined means "keep running" (the broker). */
async function run(argv: readonly string[]): Promise<number | undefined> {
  const command = parseCliArgs(argv);
  switch (command.kind) {
    case 'help':
      output.stdout(USAGE);
      return 0;
    case 'version':
      output.stdout(`${packageVersion()}\n`);
      return 0;
    case 'check-config': {
      const { runCheckConfig } = await import('./check-config.js');
      return runCheckConfig(command.configFile, output);
    }
    case 'passwd': {
      const { runPasswd } = await import('./passwd.js');
      return runPasswd([...command.argv]);
    }
    case 'bench': {
      const { runBench } = await import('./bench.js');
      return runBench([...command.argv]);
    }
    case 'bridge': {
      const { runBridge } = await import('./bridge.js');
      return runBridge([...command.argv]);
    }
    case 'broker': {
      const { runBrokerCommand } = await import('./broker-command.js');
      await runBrokerCommand(command);
      return undefined;
    }
  }
}

try {
  const code = await run(process.argv.slice(2));
  if (code !== undefined) process.exitCode = code;
} catch (err) {
  if (isTernError(err, 'ERR_CLI_USAGE')) {
    output.stderr(`tern: ${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else if (isTernError(err)) {
    output.stderr(`tern: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    output.stderr(`tern: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}
