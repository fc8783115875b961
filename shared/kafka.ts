import { Kafka, logLevel, type KafkaConfig, type logCreator } from 'kafkajs';
import type { Logger } from './log.js';

const PINO_LEVELS = { [logLevel.ERROR]: 'error', [logLevel.WARN]: 'warn', [logLevel.INFO]: 'info', [logLevel.DEBUG]: 'debug' } as const;

/** kafkajs's own log lines into ours, so they carry the component and land in the same place. */
export function kafkaLogTo(log: Logger): logCreator {
  return () =>
    ({ namespace, level, log: { message, timestamp: _t, logger: _l, ...rest } }) => {
      const method = PINO_LEVELS[level as keyof typeof PINO_LEVELS];
      if (method) log[method]({ kafkajs: namespace, ...rest }, message);
    };
}

/** A kafkajs client that logs through ours; `extra` tunes timeouts and retries per use. */
export function kafkaClient(brokers: string[], clientId: string, log: Logger, extra: Partial<KafkaConfig> = {}): Kafka {
  return new Kafka({ brokers, clientId, logLevel: logLevel.WARN, logCreator: kafkaLogTo(log), ...extra });
}

/**
 * Creates a topic with the wanted partitions unless it exists; never left to the broker's
 * auto-creation, which would give its default partition count. Returns the partition count.
 */
export async function ensureTopic(kafka: Kafka, topic: string, partitions: number, log: Logger): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
    }
    const [meta] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    const have = meta?.partitions.length ?? 0;
    if (have < partitions)
      log.warn({ topic, partitions: have, wanted: partitions }, 'topic exists with fewer partitions; using it as it is');
    return have;
  } finally {
    await admin.disconnect();
  }
}
