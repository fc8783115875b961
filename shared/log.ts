import { mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per event on stdout. Components add `vehicle` through child loggers
 * so every line about a vehicle carries its id.
 */
export function createLogger(component: string, opts: { level?: string; file?: string } = {}): Logger {
  const level = opts.level ?? process.env.FLEET_LOG_LEVEL ?? 'info';
  const destination = opts.file ? pino.destination({ dest: openLogFile(opts.file), sync: false }) : undefined;
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/**
 * Opened here, synchronously, rather than by pino: a destination still opening when the
 * process exits (a port found taken at start) makes pino's exit hook throw "sonic boom is
 * not ready yet" over the real message. Readable by its owner only, like the data beside it.
 */
function openLogFile(file: string): number {
  mkdirSync(dirname(file), { recursive: true, mode: 0o750 });
  return openSync(file, 'a', 0o600);
}
