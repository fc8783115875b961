/**
 * Where the archiver puts things in the archive. Data files sit under hive-style hour
 * directories (`dt=2026-11-30/hour=08/`) so a query prunes by time; the archiver's own
 * bookkeeping (intents, heads, the cutover) under `_fleet_archive/`, which queries skip.
 */

export const META_PREFIX = '_fleet_archive';

/** Before the first record of a lane: the `after` of its first segment. */
export const START = 'start';

/** `start` sorts before every position. */
export const positionValue = (p: string): bigint => (p === START ? -1n : BigInt(p));

/** The event-time (or receive-time) hour directory of a time in ms: `dt=YYYY-MM-DD/hour=HH`. */
export function hourDir(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `dt=${iso.slice(0, 10)}/hour=${iso.slice(11, 13)}`;
}

/** A segment's file in one hour directory: the same name in each hour its readings fall in. */
export const segmentFileKey = (hour: string, lane: string, first: string, last: string) => `${hour}/part-${lane}-${first}-${last}.parquet`;

export const laneMetaPrefix = (stream: string, lane: string) => `${META_PREFIX}/${stream}/${lane}/`;
/** The intent of the segment that follows `after` in a lane. */
export const intentKey = (stream: string, lane: string, after: string) => `${laneMetaPrefix(stream, lane)}segments/${after}.json`;
export const intentPrefix = (stream: string, lane: string) => `${laneMetaPrefix(stream, lane)}segments/`;
export const headKey = (stream: string, lane: string) => `${laneMetaPrefix(stream, lane)}head.json`;
/** Every lane's head of a stream ends with this, under `${META_PREFIX}/${stream}/`. */
export const HEAD_FILE = 'head.json';
export const cutoverKey = (stream: string) => `${META_PREFIX}/${stream}/cutover.json`;
