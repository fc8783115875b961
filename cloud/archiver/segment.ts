import type { PositionedRecord } from '../sources/source.js';
import type { ReceivedReading } from '../store.js';
import { hourDir } from './archive-keys.js';
import { DedupeState, type DedupeJson } from './dedupe-state.js';

/** Which time picks a reading's hour directory: its event time (the default), or when the gateway received it. */
export type PartitionBy = 'event' | 'received';

/**
 * What the archiver writes before a segment's files, with putIfAbsent: the first writer fixes
 * where the segment after `after` ends, and every later writer (a replay after a crash, a
 * second archiver holding the lane for a while) cuts there too and writes the same files.
 */
export interface SegmentIntent {
  /** The positions of the segment's first and last records. */
  first: string;
  last: string;
  /** The lane's dedupe state before and after the segment. */
  before: DedupeJson;
  after: DedupeJson;
}

/** A segment's rows by hour directory, and what writing it does to the dedupe state. */
export interface SegmentContent {
  hours: Map<string, ReceivedReading[]>;
  after: DedupeState;
  readings: number;
  duplicates: number;
}

/**
 * A segment's content: a pure function of the dedupe state before it and its records, so
 * every writer of a segment writes the same rows under the same keys. Late readings go to
 * the hour of their own event time.
 */
const HOUR_MS = 3_600_000;

export function segmentContent(records: PositionedRecord[], before: DedupeState, partitionBy: PartitionBy): SegmentContent {
  const after = before.clone();
  const hours = new Map<string, ReceivedReading[]>();
  let readings = 0;
  let duplicates = 0;
  // Readings come in runs of one hour: its directory is worked out once a run.
  let hour = Number.NaN;
  let rows: ReceivedReading[] = [];
  for (const rec of records) {
    for (const r of rec.batch.readings) {
      if (!after.admit(r.vehicle, r.seq)) {
        duplicates++;
        continue;
      }
      const at = Math.floor((partitionBy === 'event' ? r.ts : rec.receivedAt) / HOUR_MS);
      if (at !== hour) {
        hour = at;
        const dir = hourDir(at * HOUR_MS);
        rows = hours.get(dir) ?? [];
        hours.set(dir, rows);
      }
      rows.push({ reading: r, receivedAt: rec.receivedAt });
      readings++;
    }
  }
  return { hours, after, readings, duplicates };
}
