import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultArchiveUrl } from '../../cloud/archive/archive-location.js';
import type { ArchiveStore } from '../../cloud/archive/object-store.js';
import { openArchiveStore } from '../../cloud/archive/open-archive-store.js';
import { ParquetStaging, type ParquetCompression } from '../../cloud/archive/parquet-file.js';
import { archiverConfigSchema, stagingDirOf, streamNameOf, type ArchiverConfig } from '../../cloud/archiver/archiver-config.js';
import { cutoverKey } from '../../cloud/archiver/archive-keys.js';
import { Archiver } from '../../cloud/archiver/archiver.js';
import { backfillFromStore } from '../../cloud/archiver/store-backfill.js';
import { createSource } from '../../cloud/sources/create-source.js';
import type { ReceivedReading } from '../../cloud/store.js';
import { openStore } from '../../cloud/store/open-store.js';
import { ConfigError } from '../../shared/config.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { createRegistry } from '../../shared/ops-server.js';
import { configFrom, progressOnStderr, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export function archiverCommand(): Command {
  const cmd = describedCommand('archiver');
  return withSettings(cmd, archiverConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const config = configFrom(archiverConfigSchema, flags);
      const log = createLogger('archiver');
      if (!config.backfill) {
        stopOnSignals([await startArchiver(config, log)]);
        return;
      }
      await backfill(config, log);
    }),
  );
}

/** The archive `--to` names; a URL it refuses is a configuration error naming the flag. */
export function archiveOf(c: Pick<ArchiverConfig, 'to'>): ArchiveStore {
  try {
    return openArchiveStore(c.to ?? defaultArchiveUrl());
  } catch (err) {
    throw new ConfigError(`--to: ${(err as Error).message}`);
  }
}

/** Writes a segment's readings of one hour to a local Parquet file, through one DuckDB staging table. */
export function parquetWriter(compression: ParquetCompression): (rows: ReceivedReading[], path: string) => Promise<void> {
  let staging: Promise<ParquetStaging> | undefined;
  return async (rows, path) => {
    const s = await (staging ??= ParquetStaging.create());
    for (const { reading, receivedAt } of rows) s.append(reading, receivedAt);
    await s.write(path, { compression });
  };
}

export function createArchiver(config: ArchiverConfig, log: Logger): Archiver {
  const store = archiveOf(config);
  mkdirSync(config.dataDir, { recursive: true });
  const registry = createRegistry('archiver');
  // No window to rebuild: the archive's heads, not the commit, say what is archived.
  const source = createSource(config, { rebuildMs: 0, clientId: 'fleet-archiver', releaseWhenTaken: true }, log, registry);
  return new Archiver(
    {
      source,
      store,
      streamName: streamNameOf(config),
      stagingDir: stagingDirOf(config),
      flushBytes: config.flushBytes,
      flushAgeMs: config.flushAgeMs,
      stagingMaxBytes: config.stagingMaxBytes,
      partitionBy: config.partitionBy,
      writeFile: parquetWriter(config.compression),
      pollIntervalMs: config.pollIntervalMs,
      pollMaxRecords: 1000,
      opsHost: config.opsHost,
      opsPort: config.opsPort,
    },
    log,
    registry,
  );
}

export async function startArchiver(config: ArchiverConfig, log: Logger): Promise<Archiver> {
  const archiver = createArchiver(config, log);
  await probeArchive(archiver.store, streamNameOf(config));
  await archiver.start();
  return archiver;
}

/** What a bucket answers that no retry mends: the setting is wrong. */
const REFUSALS = new Set(['NoSuchBucket', 'AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'PermanentRedirect']);

/**
 * A bucket that is not there, or that refuses these credentials, stops the start with the
 * reason; an archive that is only away (the network, S3 slowing down) is retried by the
 * archiver's rounds, which its health reports meanwhile.
 */
async function probeArchive(store: ArchiveStore, streamName: string): Promise<void> {
  try {
    await store.get(cutoverKey(streamName));
  } catch (err) {
    const e = err as Error;
    if (REFUSALS.has(e.name)) throw new ConfigError(`--to ${store.location}: ${e.name}: ${e.message}`);
  }
}

/**
 * One-shot: the stream up to now (the embedded log from its start, for a consumer group that
 * never committed), then with --store what the operational store holds from before it.
 */
async function backfill(config: ArchiverConfig, log: Logger): Promise<void> {
  const archiver = createArchiver({ ...config, opsPort: -1 }, log);
  const progress = () => {
    const t = archiver.totals;
    process.stderr.write(
      `\rarchived ${t.readings} readings in ${t.segments} segments (${t.duplicates} repeats dropped, ${t.skipped} records already archived)`,
    );
  };
  await archiver.drain(progress);
  await archiver.close();
  process.stderr.write('\n');
  if (config.store === undefined) return;
  const store = openStore(config.store, log);
  await store.open();
  try {
    const shown = progressOnStderr('backfilled from the store: went through', 'readings');
    const report = await backfillFromStore(store, {
      archive: archiver.store,
      streamName: streamNameOf(config),
      stagingDir: stagingDirOf(config),
      partitionBy: config.partitionBy,
      writeFile: parquetWriter(config.compression),
      ...STORE_BACKFILL,
      onProgress: shown.update,
    });
    shown.end();
    process.stderr.write(`archived ${report.archived} readings of the store's ${report.seen} in ${report.files} files\n`);
  } finally {
    await store.close();
  }
}

/**
 * Pages of 5,000 readings, files of at most 500,000 (a few MB of Parquet), at most 1,000,000
 * held: fixed, since they decide where the backfill's files are cut, which a later run must
 * find the same.
 */
const STORE_BACKFILL = { pageRows: 5_000, fileRows: 500_000, heldRows: 1_000_000 };
