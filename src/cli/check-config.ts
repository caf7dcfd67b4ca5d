/**
 * `tern check-config -c FILE`: load and validate a configuration file without
 * starting anything. Prints "FILE: ok" (exit 0) or every problem (exit 1).
 */
import { loadConfigFile } from '../config/load.js';
import { isTernError } from '../errors.js';

export interface CommandOutput {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export async function runCheckConfig(file: string, out: CommandOutput): Promise<number> {
  try {
    await loadConfigFile(file);
  } catch (err) {
    if (!isTernError(err)) throw err;
    out.stderr(`${err.message}\n`);
    return 1;
  }
  out.stdout(`${file}: ok\n`);
  return 0;
}
