import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * The rates adapters ship at, most common first: 38400 and 9600 are the ELM327's own (a pin
 * strap picks one); clones and the STN-based adapters come at 115200, 57600, 230400 or 500000.
 */
export const COMMON_BAUD_RATES: readonly number[] = [38400, 9600, 115200, 57600, 230400, 500000];

const MIN_BAUD = 300;
const MAX_BAUD = 4_000_000;

/** The rate that worked last time, then the configured one, then the common ones; each once. */
export function probeOrder(remembered: number | undefined, configured: number): number[] {
  return [...new Set([...(remembered === undefined ? [] : [remembered]), configured, ...COMMON_BAUD_RATES])];
}

/**
 * The rate the adapter answered at, from the file it was remembered in: undefined when there
 * is no file yet, a problem in words when there is one that cannot be used.
 */
export function readRememberedBaud(path: string): { baudRate: number } | { problem: string } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { problem: `${path}: ${(err as Error).message}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { problem: `${path}: not JSON` };
  }
  const baudRate = (parsed as { baudRate?: unknown } | null)?.baudRate;
  if (!Number.isInteger(baudRate) || (baudRate as number) < MIN_BAUD || (baudRate as number) > MAX_BAUD) {
    return { problem: `${path}: baudRate must be a whole number of baud in [${MIN_BAUD}, ${MAX_BAUD}], got ${JSON.stringify(baudRate)}` };
  }
  return { baudRate: baudRate as number };
}

/** Written beside and renamed over, so a power cut leaves the old file or the new one, never half of one. Throws on a filesystem error. */
export function rememberBaud(path: string, baudRate: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ baudRate })}\n`);
  renameSync(tmp, path);
}
