import { join } from 'node:path';
import { z } from 'zod';
import { STREAMS } from '../../shared/contract/topics.js';
import type { Logger } from '../../shared/log.js';
import type { AlertStream } from './alert-stream.js';
import { KafkaAlertStream } from './kafka-alert-stream.js';
import { KinesisAlertStream } from './kinesis-alert-stream.js';

export const ALERT_STREAM_KINDS = ['kafka', 'kinesis'] as const;
export type AlertStreamKind = (typeof ALERT_STREAM_KINDS)[number];

/** Where fleet.alerts is, shared by the detector that writes it and the dispatchers that read it. */
export const alertStreamSettings = {
  alertsTopic: z.string().min(1).default(STREAMS.alerts).describe('Kafka alert topic, created at start if missing'),
  alertsStream: z.string().min(1).default(STREAMS.alerts).describe('Kinesis alert stream, created at start if missing'),
};

export interface AlertStreamSettings {
  alertsTopic: string;
  alertsStream: string;
  kafkaBrokers: string[];
  kafkaReplicationFactor: number;
  kafkaMinInsyncReplicas: number;
  awsRegion: string;
  awsEndpoint?: string;
}

/**
 * fleet.alerts on the stream `kind` names. `consumer` (a dispatcher's group and data dir) is
 * given where the stream is read: a Kafka consumer group, or the file of Kinesis checkpoints.
 */
export function createAlertStream(
  kind: AlertStreamKind,
  c: AlertStreamSettings,
  clientId: string,
  log: Logger,
  consumer?: { group: string; dataDir: string },
): AlertStream {
  switch (kind) {
    case 'kafka':
      return new KafkaAlertStream(
        {
          brokers: c.kafkaBrokers,
          topic: c.alertsTopic,
          clientId,
          groupId: consumer?.group,
          replicationFactor: c.kafkaReplicationFactor,
          minInsyncReplicas: c.kafkaMinInsyncReplicas,
        },
        log,
      );
    case 'kinesis':
      return new KinesisAlertStream(
        {
          region: c.awsRegion,
          endpoint: c.awsEndpoint,
          streamName: c.alertsStream,
          checkpointPath: consumer && join(consumer.dataDir, `kinesis-${consumer.group}.checkpoints.db`),
        },
        log,
      );
  }
}
