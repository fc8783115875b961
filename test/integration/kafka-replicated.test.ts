import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Kafka, logLevel, type ConfigResourceTypes } from 'kafkajs';
import { KafkaSink } from '../../gateway/sinks/kafka/kafka-sink.js';
import { decodeStreamRecord, kafkaCarrier } from '../../shared/contract/stream-record.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { tempDir, waitFor } from '../support/harness.js';
import { startKafkaCluster, type KafkaCluster } from '../support/kafka-broker.js';

const TOPIC = STREAMS.telemetry;
/** ConfigResourceTypes.TOPIC (the enum is not among kafkajs's ESM exports). */
const TOPIC_RESOURCE = 2 as ConfigResourceTypes;

/** agents → gateway → a three-node KRaft cluster (replication 3, min ISR 2) → detector. */
describe('the gateway on a replicated Kafka cluster', () => {
  const dir = tempDir('fleet-kafka-replicated-');
  let cluster: KafkaCluster;
  let cloud: Cloud;

  const admin = () => new Kafka({ brokers: cluster.brokers, clientId: 'replicated-test', logLevel: logLevel.NOTHING }).admin();

  beforeAll(async () => {
    cluster = await startKafkaCluster(3);
    const stream = { kafkaBrokers: cluster.brokers };
    cloud = await new Cloud({
      dir,
      gateway: { sinks: ['kafka'], ...stream, kafkaPartitions: 3, kafkaReplicationFactor: 3, kafkaMinInsyncReplicas: 2 },
      detector: { source: 'kafka', ...stream },
    }).start();
  });

  afterAll(async () => {
    await cloud?.stop();
    await cluster?.stop();
  });

  it('creates the telemetry topic with three replicas in sync and min.insync.replicas 2', async () => {
    const partitions = await cluster.partitions(TOPIC);
    assert.equal(partitions.length, 3);
    for (const p of partitions) assert.deepEqual(p.isr, [1, 2, 3], `partition ${p.partition}`);
    const a = admin();
    await a.connect();
    try {
      const { resources } = await a.describeConfigs({
        resources: [{ type: TOPIC_RESOURCE, name: TOPIC, configNames: ['min.insync.replicas'] }],
        includeSynonyms: false,
      });
      assert.equal(resources[0]?.configEntries[0]?.configValue, '2');
    } finally {
      await a.disconnect();
    }
  });

  it('refuses a replication factor the cluster cannot hold, naming the setting', async () => {
    const sink = new KafkaSink({ brokers: cluster.brokers, topic: 'fleet.too-many-copies', replicationFactor: 4 }, cloud.log);
    try {
      await assert.rejects(sink.start(), /replication factor 4 needs as many brokers; the cluster has 3 \(kafkaReplicationFactor\)/);
    } finally {
      await sink.close();
    }
  });

  it('loses nothing when a partition leader is SIGKILLed under load, and PUBACKs resume without a restart', async () => {
    const fleet = new SimulatedFleet(
      { count: 6, prefix: 'rf-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'fleet'), simHz: 10 },
      cloud.log,
    );
    await fleet.start();
    try {
      await waitFor(
        'readings flowing',
        () => fleet.trucks.every((t) => storedSeqs(cloud.detector, t.agent.opts.vehicle).length > 100),
        60_000,
      );
      // The node leading the most partitions: its partitions must move to a follower.
      const before = await cluster.partitions(TOPIC);
      const led = (id: number) => before.filter((p) => p.leader === id).length;
      const victim = [1, 2, 3].reduce((best, id) => (led(id) > led(best) ? id : best));
      const storedAtKill = fleet.trucks.map((t) => storedSeqs(cloud.detector, t.agent.opts.vehicle).length);
      cluster.node(victim).kill();

      const after = await waitFor(
        'every partition led by a live node with two in sync',
        async () => {
          const ps = await cluster.partitions(TOPIC).catch(() => []);
          return ps.length === 3 && ps.every((p) => p.leader !== victim && p.leader >= 0 && p.isr.length >= 2) && ps;
        },
        90_000,
        250,
      );
      assert.ok(
        after.every((p) => !p.isr.includes(victim)),
        'the killed node left the in-sync replicas',
      );
      // Acknowledged writes go on with two brokers: every truck gets well past where it stood.
      await waitFor(
        'readings stored again after the kill',
        () => fleet.trucks.every((t, i) => storedSeqs(cloud.detector, t.agent.opts.vehicle).length > storedAtKill[i]! + 100),
        90_000,
        200,
      );
      assert.ok(await fleet.drain(90_000), 'every buffer drained');
      assert.ok(cloud.gateway.health().ok, 'the sink recovered by itself');

      const produced = new Map(fleet.trucks.map((t) => [t.agent.opts.vehicle, t.agent.buffer.stats().nextSeq - 1]));
      // In the stream itself, read back from the surviving replicas: every (vehicle, seq) at
      // least once, repeats only of a whole batch the gateway retried.
      const inStream = await readTopic(
        cluster.brokers,
        [...produced.values()].reduce((a, b) => a + b, 0),
      );
      for (const [vehicle, n] of produced) {
        assert.deepEqual(
          [...new Set(inStream.get(vehicle))].sort((a, b) => a - b),
          Array.from({ length: n }, (_, i) => i + 1),
          `${vehicle} in ${TOPIC}`,
        );
      }
      // And in the store, through the detector's consumer group, which lost its coordinator or a partition leader.
      for (const [vehicle, n] of produced) {
        await waitFor(`${vehicle}: all ${n} stored`, () => storedSeqs(cloud.detector, vehicle).length === n, 60_000, 200);
        assert.deepEqual(
          storedSeqs(cloud.detector, vehicle),
          Array.from({ length: n }, (_, i) => i + 1),
        );
      }
    } finally {
      await fleet.stop();
    }
  });
});

/** Every reading's seq per vehicle in the topic, read from the start until `atLeast` readings came. */
async function readTopic(brokers: string[], atLeast: number): Promise<Map<string, number[]>> {
  const kafka = new Kafka({ brokers, clientId: 'replicated-check', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `check-${Date.now()}`, maxWaitTimeInMs: 500 });
  const seqs = new Map<string, number[]>();
  let count = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const { batch } = decodeStreamRecord(message.value!, kafkaCarrier(message.key!.toString(), message.headers, message.timestamp));
        const list = seqs.get(batch.vehicle) ?? [];
        for (const r of batch.readings) list.push(r.seq);
        seqs.set(batch.vehicle, list);
        count += batch.readings.length;
      },
    });
    await waitFor(`${atLeast} readings read back from ${TOPIC}`, () => count >= atLeast, 60_000, 100);
  } finally {
    await consumer.disconnect();
  }
  return seqs;
}
