/** Logging options; its own module so the bridge's config can share it without an import cycle. */
import { z } from 'zod';

export const logSchema = z
  .object({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
    /** `json` lines, `pretty` for a terminal, or `auto` (pretty when stdout is a TTY). */
    format: z.enum(['auto', 'json', 'pretty']).default('auto'),
  })
  .strict();
