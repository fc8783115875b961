import { MIN_TS, show } from '../shared/contract/validate.js';

/** A status document is a few hundred bytes; a retained one is sent to every console that subscribes. */
export const MAX_STATUS_BYTES = 4096;

/**
 * What is wrong with a vehicle's status document (docs/CONTRACT.md), or undefined: a JSON
 * object of at most MAX_STATUS_BYTES with a boolean `online` and `at`, whole ms since the
 * epoch, no later than the gateway's clock allows for readings.
 */
export function statusProblem(payload: Buffer, now: number, maxClockAheadMs: number): string | undefined {
  if (payload.length > MAX_STATUS_BYTES) return `status of ${payload.length} bytes exceeds the limit of ${MAX_STATUS_BYTES}`;
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString());
  } catch {
    return 'status is not valid JSON';
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'status must be a JSON object';
  const { online, at } = doc as { online?: unknown; at?: unknown };
  if (typeof online !== 'boolean') return 'status.online: must be true or false';
  const latest = now + maxClockAheadMs;
  if (typeof at !== 'number' || !Number.isInteger(at) || at < MIN_TS || at > latest) {
    return `status.at: must be ms since epoch between ${new Date(MIN_TS).toISOString()} and ${new Date(latest).toISOString()}, got ${show(at)}`;
  }
  return undefined;
}
