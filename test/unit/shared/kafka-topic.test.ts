import assert from 'node:assert/strict';
import type { Admin, ITopicMetadata, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { describe, it } from 'vitest';
import { ensureTopic } from '../../../shared/kafka.js';

/** kafkajs's error when the broker asked does not know the topic (yet). */
const unknownTopic = () =>
  Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });

/**
 * An admin client as kafkajs's behaves when another gateway created the topic a moment ago:
 * the broker answering metadata does not know it for the first `unknownFor` asks, and
 * createTopics, left to wait for leaders itself, gives up on that error.
 */
function racingAdmin(unknownFor: number) {
  const calls = { metadata: 0, created: 0 };
  const partitions: ITopicMetadata['partitions'] = [0, 1, 2].map((partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    offlineReplicas: [],
    partitionErrorCode: 0,
  }));
  const metadata = () => {
    if (calls.metadata++ < unknownFor) throw unknownTopic();
    return { topics: [{ name: 'fleet.telemetry', partitions }] };
  };
  const admin = {
    connect: async () => {},
    disconnect: async () => {},
    listTopics: async () => (calls.created > 0 ? ['fleet.telemetry'] : []),
    describeCluster: async () => ({ brokers: [{ nodeId: 1, host: 'kafka-1', port: 9092 }], controller: 1, clusterId: 'c' }),
    createTopics: async ({ waitForLeaders = true }: { waitForLeaders?: boolean }) => {
      calls.created++;
      if (waitForLeaders) metadata();
      return true;
    },
    fetchTopicMetadata: async () => metadata(),
  };
  return { kafka: { admin: () => admin as unknown as Admin } as unknown as Kafka, calls };
}

describe('ensureTopic', () => {
  it('waits for a topic the broker does not know yet, rather than failing the start', async () => {
    const { kafka, calls } = racingAdmin(2);
    assert.equal(await ensureTopic(kafka, 'fleet.telemetry', { partitions: 3 }, pino({ level: 'silent' })), 3);
    assert.equal(calls.created, 1);
    assert.equal(calls.metadata, 3, 'asked again until the broker knew the topic');
  });
});
