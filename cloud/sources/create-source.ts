import { join } from 'node:path';
import type { DetectorConfig } from '../detector-config.js';
import type { Logger } from '../../shared/log.js';
import { EmbeddedSource } from './embedded-source.js';
import { KafkaSource } from './kafka-source.js';
import { KinesisSource } from './kinesis-source.js';
import type { TelemetrySource } from './source.js';

/**
 * The source a detector config names. Each re-reads `rebuildMs` of the stream before its
 * committed position on start (or on partition assignment) to rebuild open windows.
 */
export function createSource(c: DetectorConfig, rebuildMs: number, log: Logger): TelemetrySource {
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
        checkpointPath: join(c.dataDir, `kinesis-${c.consumerGroup}.checkpoints.db`),
        rebuildMs,
      });
  }
}
