import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import type { DetectorConfig } from '../detector-config.js';
import type { Logger } from '../../shared/log.js';
import { EmbeddedSource } from './embedded-source.js';
import { KafkaSource } from './kafka-source.js';
import type { ShardAssignment } from './kinesis-assignment.js';
import { LeaseShardAssignment } from './kinesis-lease-assignment.js';
import { LocalShardAssignment } from './kinesis-local-assignment.js';
import { KinesisSource } from './kinesis-source.js';
import type { TelemetrySource } from './source.js';

/**
 * The source a detector config names. Each re-reads `rebuildMs` of the stream before its
 * committed position on start (or on partition assignment) to rebuild open windows.
 */
export function createSource(c: DetectorConfig, rebuildMs: number, log: Logger, registry?: Registry): TelemetrySource {
  switch (c.source) {
    case 'embedded':
      return new EmbeddedSource(c.streamPath, c.consumerGroup, rebuildMs);
    case 'kafka':
      return new KafkaSource({ brokers: c.kafkaBrokers, topic: c.kafkaTopic, groupId: c.consumerGroup, rebuildMs }, log);
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

function kinesisAssignment(c: DetectorConfig, log: Logger, registry?: Registry): ShardAssignment {
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
