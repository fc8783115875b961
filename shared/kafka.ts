import { Kafka, logLevel, type Admin, type ConfigResourceTypes, type KafkaConfig, type logCreator } from 'kafkajs';
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
 * How the producers are made: no retry of a send inside kafkajs, and so not idempotent
 * (kafkajs refuses an idempotent producer without retries). kafkajs 2.2.4 retries only the
 * brokers of a send that did not answer, but looks the partitions' leaders up again: a
 * partition whose leader died and moved to a broker that had already answered is then never
 * sent, and the send resolves. With a broker SIGKILLed under load that acknowledged batches
 * that were not in the topic. A failed send is retried whole by its caller instead, with a
 * fresh producer; one request in flight keeps the order, and consumers drop what a retry
 * repeats.
 */
export const PRODUCER_SETTINGS = { idempotent: false, maxInFlightRequests: 1, retry: { retries: 0 } };

/** How a topic is made when it is missing. */
export interface TopicSpec {
  partitions: number;
  /** Copies of each partition, on as many brokers (default 1). */
  replicationFactor?: number;
  /**
   * The topic's min.insync.replicas: an acks=all write is acknowledged only once this many
   * replicas have it, and refused while fewer are in sync (default: the broker's, 1).
   */
  minInsyncReplicas?: number;
}

const MIN_ISR = 'min.insync.replicas';
/** ConfigResourceTypes.TOPIC: kafkajs declares the enum, but Node's ESM loader does not find it among its CommonJS exports. */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/**
 * Creates a topic with the wanted partitions and replication unless it exists; never left to
 * the broker's auto-creation, which would give its defaults. An existing topic is used as it
 * is (changing partitions moves vehicles, changing replication is a reassignment: an
 * operator's decisions), with a warning where it is short of the spec. Returns the partition count.
 */
export async function ensureTopic(kafka: Kafka, topic: string, spec: TopicSpec, log: Logger): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topic)) await createTopic(admin, topic, spec);
    const [meta] = (await topicMetadata(admin, topic)).topics;
    const have = meta?.partitions.length ?? 0;
    if (have < spec.partitions)
      log.warn({ topic, partitions: have, wanted: spec.partitions }, 'topic exists with fewer partitions; using it as it is');
    const replicas = Math.min(...(meta?.partitions ?? []).map((p) => p.replicas.length));
    if (replicas < (spec.replicationFactor ?? 1))
      log.warn(
        { topic, replicationFactor: replicas, wanted: spec.replicationFactor },
        'topic exists with fewer replicas; using it as it is',
      );
    if (spec.minInsyncReplicas !== undefined) {
      const minIsr = await topicMinIsr(admin, topic);
      if (minIsr < spec.minInsyncReplicas)
        log.warn(
          { topic, minInsyncReplicas: minIsr, wanted: spec.minInsyncReplicas },
          'topic exists with a lower min.insync.replicas; using it as it is',
        );
    }
    return have;
  } finally {
    await admin.disconnect();
  }
}

async function createTopic(admin: Admin, topic: string, spec: TopicSpec): Promise<void> {
  const { brokers } = await admin.describeCluster();
  const replicationFactor = spec.replicationFactor ?? 1;
  if (replicationFactor > brokers.length)
    throw new Error(
      `Kafka topic ${topic}: replication factor ${replicationFactor} needs as many brokers; the cluster has ${brokers.length} (kafkaReplicationFactor)`,
    );
  const configEntries = spec.minInsyncReplicas === undefined ? [] : [{ name: MIN_ISR, value: String(spec.minInsyncReplicas) }];
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: spec.partitions, replicationFactor, configEntries }],
      // kafkajs waits for leaders unless told not to, and gives up when the broker it asks does not know the new topic yet.
      waitForLeaders: false,
    });
  } catch (err) {
    // Another process may have created it in the meantime; anything else is named with the spec asked for.
    if ((await admin.listTopics()).includes(topic)) return;
    const e = err as Error & { errors?: { message: string }[] };
    const detail = e.errors?.map((x) => x.message).join('; ') || e.message;
    throw new Error(
      `creating Kafka topic ${topic} (${spec.partitions} partitions, replication factor ${replicationFactor}` +
        `${spec.minInsyncReplicas === undefined ? '' : `, ${MIN_ISR} ${spec.minInsyncReplicas}`}): ${detail}`,
      { cause: err },
    );
  }
}

async function topicMinIsr(admin: Admin, topic: string): Promise<number> {
  const { resources } = await admin.describeConfigs({
    resources: [{ type: TOPIC_RESOURCE, name: topic, configNames: [MIN_ISR] }],
    includeSynonyms: false,
  });
  return Number(resources[0]?.configEntries.find((c) => c.configName === MIN_ISR)?.configValue ?? 1);
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
