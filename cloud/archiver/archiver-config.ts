import { join } from 'node:path';
import { z } from 'zod';
import { bool, int } from '../../shared/config.js';
import { DATA_DIRS, OPS_PORTS } from '../../shared/defaults.js';
import { opsSettings, storeSetting } from '../../shared/settings.js';
import { sourceSettings } from '../sources/source-settings.js';

const MIB = 1024 * 1024;

export const archiverConfigSchema = z
  .object({
    to: z.string().min(1).optional().meta({
      description: 'the archive: file:///absolute/dir or s3://bucket/prefix (S3 credentials, region and endpoint the AWS way)',
      arg: 'url',
      defaultText: 'the embedded archive, file://$PWD/var/cloud/archive',
    }),
    ...sourceSettings('archiver'),
    dataDir: z.string().default(DATA_DIRS.cloud).describe('Kinesis checkpoints (without leases) and the staging directory'),
    consumerGroup: z
      .string()
      .min(1)
      .default('fleet-archiver')
      .describe("consumer group / position name, apart from the detectors'; archivers sharing it share the partitions"),
    flushBytes: int()
      .min(1024)
      .default(64 * MIB)
      .describe(
        "a lane's segment (a Kafka partition's, a Kinesis shard's) is written once this many bytes of stream records are staged in it (64 MiB)",
      ),
    flushAgeMs: int().min(100).default(300_000).describe('... or once its oldest staged record has waited this long (5 minutes)'),
    stagingMaxBytes: int()
      .min(1024)
      .default(256 * MIB)
      .describe('stream bytes staged across all lanes: past it the biggest lane is written early (256 MiB)'),
    stagingDir: z
      .string()
      .optional()
      .meta({ description: 'where Parquet files are written before they are uploaded', defaultText: 'DATA_DIR/archive-staging' }),
    partitionBy: z
      .enum(['event', 'received'])
      .default('event')
      .describe(
        "which time picks a reading's hour directory: its event time (late readings go to their own hour) or when the gateway received it",
      ),
    compression: z.enum(['zstd', 'snappy']).default('zstd').describe('Parquet compression'),
    pollIntervalMs: int().min(1).max(10_000).default(200).describe('idle poll interval of the stream'),
    backfill: bool()
      .default(false)
      .describe('archive what the stream holds (from its start, for a consumer group that never committed) and exit'),
    store: storeSetting.optional().meta({
      description: 'with --backfill: the operational store to archive older readings from, a SQLite file or a postgres:// URL',
      defaultText: 'none',
    }),
    ...opsSettings(OPS_PORTS.archiver),
  })
  .strict()
  .refine((c) => c.source !== 'kafka' || c.kafkaBrokers.length > 0, {
    message: 'the kafka source needs kafkaBrokers',
    path: ['kafkaBrokers'],
  })
  .refine((c) => c.store === undefined || c.backfill, { message: 'is read only with --backfill', path: ['store'] })
  .refine((c) => c.flushBytes <= c.stagingMaxBytes, { message: 'must not exceed stagingMaxBytes', path: ['flushBytes'] });

export type ArchiverConfig = z.infer<typeof archiverConfigSchema>;

export const stagingDirOf = (c: ArchiverConfig) => c.stagingDir ?? join(c.dataDir, 'archive-staging');

/** The stream the archive's bookkeeping is named after: the topic or stream read. */
export function streamNameOf(c: ArchiverConfig): string {
  switch (c.source) {
    case 'kafka':
      return c.kafkaTopic;
    case 'kinesis':
      return c.kinesisStream;
    case 'embedded':
      return 'embedded';
  }
}
