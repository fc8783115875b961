import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config.js';
import type { ArchiveStore } from '../archive/object-store.js';
import type { FleetStore, ReadingKey, ReceivedReading } from '../store.js';
import { cutoverKey, HEAD_FILE, hourDir, META_PREFIX } from './archive-keys.js';
import { DedupeState } from './dedupe-state.js';
import { readHead } from './lane-archiver.js';
import type { PartitionBy } from './segment.js';

export interface StoreBackfillOptions {
  archive: ArchiveStore;
  /** The stream whose archive this completes: its heads and cutover say what it holds. */
  streamName: string;
  stagingDir: string;
  partitionBy: PartitionBy;
  writeFile(rows: ReceivedReading[], localPath: string): Promise<void>;
  /** Readings read from the store at a time. */
  pageRows: number;
  /** Readings in one backfill file at most. */
  fileRows: number;
  /** Readings held for files across hours at most: past it the fullest hour is written. */
  heldRows: number;
  /** After each page: readings gone through, of about how many. */
  onProgress?(seen: number, total: number): void;
}

export interface StoreBackfillReport {
  seen: number;
  archived: number;
  files: number;
}

/** What the stream archive holds: per vehicle the lowest seq archived, and when it began. */
async function streamArchive(archive: ArchiveStore, streamName: string): Promise<{ lowest: Map<string, number>; cutover: number }> {
  const cutover = await archive.get(cutoverKey(streamName));
  if (cutover === undefined)
    throw new ConfigError(
      `${archive.location} holds no archive of the stream ${streamName} yet: run fleet archiver on the stream first; the backfill takes what the operational store holds from before it`,
    );
  const lowest = new Map<string, number>();
  for await (const o of archive.list(`${META_PREFIX}/${streamName}/`)) {
    if (!o.key.endsWith(`/${HEAD_FILE}`)) continue;
    const head = await readHead(archive, o.key);
    if (!head) continue;
    const state = DedupeState.fromJson(head.dedupe);
    for (const vehicle of Object.keys(head.dedupe)) {
      const seq = state.lowest(vehicle)!;
      lowest.set(vehicle, Math.min(seq, lowest.get(vehicle) ?? seq));
    }
  }
  return { lowest, cutover: (JSON.parse(cutover.toString('utf8')) as { receivedAt: number }).receivedAt };
}

/**
 * Archives the readings the operational store holds that the stream archive does not: a
 * vehicle's readings below the lowest seq the archive holds of it, and, for a vehicle the
 * archive does not know, those received before the stream archive began (its cutover).
 * Files are named after their first and last (vehicle, seq), `backfill-<vehicle>:<seq>-<vehicle>:<seq>`,
 * cut at the same readings every run (pages in key order, size-bound cuts), so running it
 * again rewrites the same objects rather than adding any.
 */
export async function backfillFromStore(from: FleetStore, o: StoreBackfillOptions): Promise<StoreBackfillReport> {
  const { lowest, cutover } = await streamArchive(o.archive, o.streamName);
  const report: StoreBackfillReport = { seen: 0, archived: 0, files: 0 };
  const hours = new Map<string, ReceivedReading[]>();
  let held = 0;
  const write = async (hour: string) => {
    const rows = hours.get(hour)!;
    hours.delete(hour);
    held -= rows.length;
    const name = (r: ReceivedReading) => `${r.reading.vehicle}:${r.reading.seq}`;
    const file = `backfill-${name(rows[0]!)}-${name(rows.at(-1)!)}.parquet`;
    const local = join(o.stagingDir, `${hour.replace('/', '-')}-${file}`);
    try {
      await o.writeFile(rows, local);
      await o.archive.putFile(`${hour}/${file}`, local);
    } finally {
      await rm(local, { force: true });
    }
    report.files++;
  };
  const { readingsStored: total } = await from.counts();
  let after: ReadingKey | undefined;
  for (;;) {
    const page = await from.readingsPage(after, o.pageRows);
    if (page.length === 0) break;
    for (const r of page) {
      const { vehicle, seq } = r.reading;
      const low = lowest.get(vehicle);
      if (low === undefined ? r.receivedAt >= cutover : seq >= low) continue;
      const hour = hourDir(o.partitionBy === 'event' ? r.reading.ts : r.receivedAt);
      const rows = hours.get(hour) ?? [];
      hours.set(hour, rows);
      rows.push(r);
      held++;
      report.archived++;
      if (rows.length >= o.fileRows) await write(hour);
    }
    while (held > o.heldRows) await write([...hours].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1))[0]![0]);
    report.seen += page.length;
    after = page.at(-1)!.reading;
    o.onProgress?.(report.seen, Math.max(total, report.seen));
  }
  for (const hour of [...hours.keys()].sort()) await write(hour);
  return report;
}
