/**
 * Child-process entry for the kill tests: `node --import tsx bridge-entry.ts -c FILE`
 * runs `tern bridge` exactly as the CLI does (runBridge), then exits with its code.
 */
import { runBridge } from '../../../src/cli/bridge.js';

try {
  const code = await runBridge(process.argv.slice(2));
  process.exit(code);
} catch (err) {
  process.stderr.write(`tern: ${(err as Error).message}\n`);
  process.exit(1);
}
