import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { Logger } from '../../shared/log.js';
import { EmbeddedSource } from './embedded-source.js';
import { KafkaSource } from './kafka-source.js';
import type { ShardAssignment } from './kinesis-assignment.js';
import { LeaseShardAssignment } from './kinesis-lease-assignment.js';
import { LocalShardAssignment } from './kinesis-local-assignment.js';
import { KinesisSource } from './kinesis-source.js';
import type { PositionedSource } from './source.js';
import type { SourceSettings } from './source-settings.js';

/** How a command reads: the detector rebuilds windows; the archiver holds records for minutes. */
export interface ReaderOptions {
  /** Re-read this much of the stream before the committed position on start (or on partition assignment) to rebuild open windows. */
  rebuildMs: number;
  /** The Kafka client id. */
  clientId?: string;
  /** See KafkaSourceOptions.releaseWhenTaken. */
  releaseWhenTaken?: boolean;
}

/** The source a command's settings name. */
export function createSource(c: SourceSettings, reader: ReaderOptions, log: Logger, registry?: Registry): PositionedSource {
  const { rebuildMs } = reader;
  switch (c.source) {
    case 'embedded':
      return new EmbeddedSource(c.streamPath, c.consumerGroup, rebuildMs);
    case 'kafka':
      return new KafkaSource(
        {
          brokers: c.kafkaBrokers,
          topic: c.kafkaTopic,
          groupId: c.consumerGroup,
          rebuildMs,
          clientId: reader.clientId,
          releaseWhenTaken: reader.releaseWhenTaken,
        },
        log,
      );
    case 'kinesis':
      return new KinesisSource({
        region: c.awsRegion,
        endpoint: c.awsEndpoint,
        streamName: c.kinesisStream,
        assignment: kinesisAssignment(c, log, registry),
        rebuildMs,
        log,
        registry,
      });
  }
}

function kinesisAssignment(c: SourceSettings, log: Logger, registry?: Registry): ShardAssignment {
  if (c.kinesisLeases === undefined)
    return new LocalShardAssignment(join(c.dataDir, `kinesis-${c.consumerGroup}.checkpoints.db`), c.kinesisStream);
  return new LeaseShardAssignment({
    region: c.awsRegion,
    endpoint: c.awsEndpoint,
    tableName: c.kinesisLeases,
    workerId: c.kinesisWorkerId ?? `${hostname()}-${process.pid}`,
    leaseTimeMs: c.kinesisLeaseTimeMs,
    log,
    registry,
  });
}
