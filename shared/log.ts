import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * One JSON line per event on stdout. Components add `vehicle` through child loggers
 * so every line about a vehicle carries its id.
 */
export function createLogger(component: string, opts: { level?: string; file?: string } = {}): Logger {
  const level = opts.level ?? process.env.FLEET_LOG_LEVEL ?? 'info';
  const destination = opts.file ? pino.destination({ dest: opts.file, mkdir: true, sync: false }) : undefined;
  return pino({ level, base: { component, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
