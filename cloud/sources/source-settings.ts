import { z } from 'zod';
import { int } from '../../shared/config.js';
import { DATA_DIRS, STREAM_FILE } from '../../shared/defaults.js';
import { awsSettings, kafkaBrokers } from '../../shared/settings.js';
import { STREAMS } from '../../shared/contract/topics.js';

/**
 * Where a cloud reader of the telemetry stream (the detector, the archiver) reads it from,
 * declared once for both. `reader` names the command in the help ("detector").
 */
export const sourceSettings = (reader: string) => ({
  dataDir: z.string().default(DATA_DIRS.cloud).describe('operational store directory'),
  source: z.enum(['embedded', 'kafka', 'kinesis']).default('embedded').describe('where telemetry comes from'),
  streamPath: z.string().default(`${DATA_DIRS.gateway}/${STREAM_FILE}`).describe('embedded stream written by the gateway'),
  kafkaBrokers: kafkaBrokers().default([]),
  kafkaTopic: z.string().min(1).default(STREAMS.telemetry).describe('telemetry topic'),
  kinesisStream: z.string().min(1).default(STREAMS.telemetry).describe('telemetry stream'),
  kinesisLeases: z
    .string()
    .min(3)
    .max(255)
    .optional()
    .meta({
      description: `DynamoDB table of shard leases, so several ${reader}s share the stream (the table is created if missing)`,
      defaultText: `none: this ${reader} reads every shard, checkpoints in DATA_DIR`,
    }),
  kinesisLeaseTimeMs: int()
    .min(1000)
    .default(10_000)
    .describe(`with leases: a shard whose ${reader} has not renewed its lease for this long goes to another`),
  kinesisWorkerId: z
    .string()
    .min(1)
    .optional()
    .meta({ description: `with leases: this ${reader}'s name as lease owner`, defaultText: 'HOST-PID' }),
  ...awsSettings,
});

/** What createSource needs of a command's settings, with the consumer group it reads as. */
export type SourceSettings = z.infer<z.ZodObject<ReturnType<typeof sourceSettings>>> & { consumerGroup: string };
