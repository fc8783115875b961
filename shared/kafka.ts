import { Kafka, logLevel, type Admin, type KafkaConfig, type logCreator } from 'kafkajs';
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
      // kafkajs waits for leaders unless told not to, and gives up when the broker it asks does not know the new topic yet.
      await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: false });
    }
    const [meta] = (await topicMetadata(admin, topic)).topics;
    const have = meta?.partitions.length ?? 0;
    if (have < partitions)
      log.warn({ topic, partitions: have, wanted: partitions }, 'topic exists with fewer partitions; using it as it is');
    return have;
  } finally {
    await admin.disconnect();
  }
}

/** How long a topic another client has just created may stay unknown to the broker answering. */
const NEW_TOPIC_WAIT_MS = 10_000;

/**
 * The topic's metadata once every partition has a leader. A topic created a moment ago (by
 * us, or by another gateway starting at the same time on a new cluster) may still be
 * unknown to the broker asked (UNKNOWN_TOPIC_OR_PARTITION) or without leaders: asked again
 * until it is ready, for at most NEW_TOPIC_WAIT_MS.
 */
async function topicMetadata(admin: Admin, topic: string): ReturnType<Admin['fetchTopicMetadata']> {
  const deadline = Date.now() + NEW_TOPIC_WAIT_MS;
  for (;;) {
    let notYet: string;
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      if (meta.topics.every((t) => t.partitions.every((p) => p.leader >= 0))) return meta;
      notYet = 'partitions without a leader';
    } catch (err) {
      if ((err as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw err;
      notYet = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`topic ${topic} not ready after ${NEW_TOPIC_WAIT_MS} ms: ${notYet}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
