/**
 * `fleet archiver` from the embedded log into an archive directory: the log is filled first
 * (outside the clock) with simulated trucks' readings, ten to a record as agents batch them,
 * then a new archiver reads it from its start to its end and writes every reading to Parquet
 * by event-time hour, as `fleet archiver --backfill` does. Readings/s is wall clock from the
 * first poll to the last file's upload; bytes per reading is the Parquet written over the
 * readings archived, with zstd (the default) beside snappy.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createArchiver } from '../bin/commands/archiver.js';
import { archiverConfigSchema } from '../cloud/archiver/archiver-config.js';
import { encodeStreamRecord } from '../shared/contract/stream-record.js';
import { createLogger } from '../shared/log.js';
import { StreamLog } from '../shared/stream-log.js';
import { tempDir } from '../test/support/harness.js';
import { emit, round, runPart, truckReadings } from './support.js';

const USAGE = `Usage: node dist/bench/archiver.js [--quick] [--help]

Readings/s of fleet archiver from a pre-filled embedded log into a file archive, and bytes per
reading of the Parquet it writes (zstd, beside snappy).
`;

const TRUCKS = 100;
const PER_RECORD = 10;
const T0 = Date.UTC(2026, 10, 30, 6);

/** The log filled with `readings` readings of TRUCKS trucks, in the order agents would send them. */
function fillLog(path: string, readings: number): void {
  const log = new StreamLog(path);
  const perTruck = Math.ceil(readings / TRUCKS);
  const trucks = Array.from({ length: TRUCKS }, (_, i) => truckReadings(`truck-${String(i).padStart(3, '0')}`, perTruck, T0, i + 1));
  for (let at = 0; at < perTruck; at += PER_RECORD) {
    const entries = trucks.map((rs) => {
      const batch = rs.slice(at, at + PER_RECORD);
      const vehicle = batch[0]!.vehicle;
      const receivedAt = batch.at(-1)!.ts + 200;
      return {
        key: vehicle,
        value: encodeStreamRecord({ vehicle, receivedAt, batch: { vehicle, headTs: batch.at(-1)!.ts, readings: batch } }),
        receivedAt,
      };
    });
    log.append(entries);
  }
  log.close();
}

async function archive(streamPath: string, compression: 'zstd' | 'snappy', log: (msg: string) => void) {
  const dir = tempDir('fleet-bench-archive-');
  const config = archiverConfigSchema.parse({
    streamPath,
    // Each run a consumer of its own, reading the log from its start.
    consumerGroup: `bench-${compression}`,
    dataDir: dir,
    to: pathToFileURL(join(dir, 'archive')).href,
    compression,
    backfill: true,
    opsPort: -1,
  });
  const archiver = createArchiver(config, createLogger('bench-archiver', { level: 'warn' }));
  const t0 = performance.now();
  await archiver.drain();
  const seconds = (performance.now() - t0) / 1000;
  await archiver.close();
  const { readings, bytes, files } = archiver.totals;
  log(
    `${compression}: ${readings.toLocaleString('en')} readings in ${round(seconds, 2)} s, ${files} files, ${bytes.toLocaleString('en')} bytes`,
  );
  rmSync(dir, { recursive: true, force: true });
  return { readings, bytes, seconds };
}

runPart(
  'archiver',
  USAGE,
  (quick) => (quick ? 120_000 : 600_000),
  async (o, log) => {
    const readings = o.quick ? 200_000 : 2_000_000;
    const dir = tempDir('fleet-bench-archiver-');
    const streamPath = join(dir, 'stream.db');
    fillLog(streamPath, readings);
    log(`log filled with ${readings.toLocaleString('en')} readings`);
    try {
      const zstd = await archive(streamPath, 'zstd', log);
      const snappy = await archive(streamPath, 'snappy', log);
      const note = `${zstd.readings.toLocaleString('en')} readings of ${TRUCKS} simulated trucks, ${PER_RECORD} a record, embedded log to a file archive, default flush (64 MiB)`;
      emit('archiver', {
        figure: 'archiver readings/s (wall clock)',
        value: Math.round(zstd.readings / zstd.seconds),
        unit: 'readings/s',
        note: `${note}, zstd`,
      });
      emit('archiver', {
        figure: 'Parquet bytes per reading, zstd (default)',
        value: round(zstd.bytes / zstd.readings, 2),
        unit: 'B',
        peer: 'snappy',
        peerValue: round(snappy.bytes / snappy.readings, 2),
        note,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
