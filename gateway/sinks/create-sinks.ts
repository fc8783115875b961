import type { Logger } from '../../shared/log.js';
import { streamPathOf, type GatewayConfig } from '../gateway-config.js';
import type { Sink } from '../sink.js';
import { EmbeddedSink } from './embedded/embedded-sink.js';
import { IotCoreSink } from './iot-core/iot-core-sink.js';
import { KafkaSink } from './kafka/kafka-sink.js';
import { KinesisSink } from './kinesis/kinesis-sink.js';

/** The sinks a gateway config names, in its order. */
export function createSinks(c: GatewayConfig, log: Logger): Sink[] {
  const aws = { region: c.awsRegion, endpoint: c.awsEndpoint };
  return c.sinks.map((kind): Sink => {
    switch (kind) {
      case 'embedded':
        return new EmbeddedSink(streamPathOf(c));
      case 'kafka':
        return new KafkaSink(
          {
            brokers: c.kafkaBrokers,
            topic: c.kafkaTopic,
            partitions: c.kafkaPartitions,
            replicationFactor: c.kafkaReplicationFactor,
            minInsyncReplicas: c.kafkaMinInsyncReplicas,
            compression: c.kafkaCompression,
          },
          log,
        );
      case 'kinesis':
        return new KinesisSink({ ...aws, streamName: c.kinesisStream, shards: c.kinesisShards });
      case 'iot-core':
        return new IotCoreSink({ ...aws, shadowIntervalMs: c.iotShadowIntervalMs });
    }
  });
}
