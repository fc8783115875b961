import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { setTimeout as delay } from 'node:timers/promises';
import { AssignerProtocol, Kafka, logLevel, Partitioners, type Admin } from 'kafkajs';
import { KafkaSource, type KafkaRecord } from '../../cloud/sources/kafka-source.js';
import { sinkRecord } from '../../gateway/sink.js';
import { KafkaSink } from '../../gateway/sinks/kafka/kafka-sink.js';
import type { Batch } from '../../shared/contract/batch.js';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { decodeStreamRecord, kafkaCarrier } from '../../shared/contract/stream-record.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { createLogger } from '../../shared/log.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';

const TOPIC = STREAMS.telemetry;
const GROUP = 'detectors';
const VEHICLES = Array.from({ length: 20 }, (_, i) => `truck-${String(i + 1).padStart(2, '0')}`);

/** What the stream carried, by identity: a batch is (vehicle, first seq). */
const idOf = (b: Batch) => `${b.vehicle}#${b.readings[0]!.seq}`;

describe('Kafka sink and source against a real broker', () => {
  const dir = tempDir('fleet-kafka-test-');
  const log = createLogger('kafka-test', { file: join(dir, 'test.log') });
  const nextSeq = new Map(VEHICLES.map((v) => [v, 1]));
  const written: Batch[] = [];
  let broker: KafkaBroker;
  let admin: Admin;
  let sink: KafkaSink;
  let a: KafkaSource;
  let b: KafkaSource;
  /** A record no gateway would write, put in the stream by hand. */
  let malformed: { partition: number; offset: number } | undefined;

  const client = () => new Kafka({ brokers: [broker.bootstrap], clientId: 'kafka-test', logLevel: logLevel.NOTHING });
  const source = (name: string) =>
    new KafkaSource({ brokers: [broker.bootstrap], groupId: GROUP, clientId: name, rebuildMs: 60_000 }, log.child({ member: name }));

  function nextBatch(vehicle: string): Batch {
    const seq = nextSeq.get(vehicle)!;
    nextSeq.set(vehicle, seq + 3);
    const now = Date.now();
    const readings: Reading[] = [0, 1, 2].map((i) => ({
      vehicle,
      seq: seq + i,
      ts: now - (3 - i) * 1000,
      clock: 'synced',
      sensor: 'engine_temp',
      value: 80 + i,
      quality: 'good',
    }));
    return { vehicle, headTs: readings.at(-1)!.ts, readings };
  }

  /** One batch per vehicle per round, all in one event-loop turn, as many agents at once. */
  async function writeRounds(rounds: number): Promise<void> {
    for (let r = 0; r < rounds; r++) {
      const batches = VEHICLES.map(nextBatch);
      await Promise.all(batches.map((batch) => sink.write(sinkRecord(batch, Date.now()))));
      written.push(...batches);
    }
  }

  /** Everything in the topic, through a plain consumer in a group of its own. */
  async function readTopic(
    atLeast: number,
  ): Promise<{ partition: number; offset: number; batch: Batch; receivedAt: number; timestamp: number }[]> {
    const consumer = client().consumer({ groupId: `check-${Date.now()}`, maxWaitTimeInMs: 500 });
    const seen: { partition: number; offset: number; batch: Batch; receivedAt: number; timestamp: number }[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: TOPIC, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          if (partition === malformed?.partition && Number(message.offset) === malformed.offset) return;
          const { batch, receivedAt } = decodeStreamRecord(
            message.value!,
            kafkaCarrier(message.key!.toString(), message.headers, message.timestamp),
          );
          seen.push({ partition, offset: Number(message.offset), batch, receivedAt, timestamp: Number(message.timestamp) });
        },
      });
      await waitFor(`${atLeast} records in ${TOPIC}`, () => seen.length >= atLeast, 20_000);
    } finally {
      await consumer.disconnect();
    }
    return seen;
  }

  /** One poll, committed at once, as the detector does. */
  async function drain(src: KafkaSource, into: KafkaRecord[]): Promise<KafkaRecord[]> {
    const got = await src.poll(50);
    into.push(...got);
    if (got.length > 0) await src.commit(got.at(-1)!);
    return got;
  }

  /** Each member's partitions by its client id, once the group is stable. */
  async function groupMembers(): Promise<Map<string, number[]>> {
    const [group] = (await admin.describeGroups([GROUP])).groups;
    if (group?.state !== 'Stable') return new Map();
    return new Map(
      group.members.map((m) => [m.clientId, AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[TOPIC] ?? []]),
    );
  }

  async function committedOffsets(): Promise<Map<number, number>> {
    const [offsets] = await admin.fetchOffsets({ groupId: GROUP, topics: [TOPIC] });
    return new Map(offsets!.partitions.map((p) => [p.partition, Math.max(0, Number(p.offset))]));
  }

  beforeAll(async () => {
    broker = await startKafka();
    admin = client().admin();
    await admin.connect();
    sink = new KafkaSink({ brokers: [broker.bootstrap], partitions: 6, clientId: 'test-gateway' }, log.child({ sink: 'kafka' }));
    await sink.start();
    // Both members in the group before any data, so no rebalance moves records mid-test.
    a = source('det-a');
    b = source('det-b');
    await a.poll(1);
    await b.poll(1);
    await waitFor(
      'a stable group of two members with three partitions each',
      async () => {
        const members = await groupMembers();
        return members.size === 2 && [...members.values()].every((ps) => ps.length === 3);
      },
      30_000,
      250,
    );
  });

  afterAll(async () => {
    try {
      await Promise.race([
        Promise.allSettled([a?.close(), b?.close(), sink?.close(), admin?.disconnect()]),
        delay(15_000, undefined, { ref: false }),
      ]);
    } finally {
      await broker?.stop();
    }
  });

  it('creates the telemetry topic with the configured partitions, and keeps an existing smaller one', async () => {
    const [meta] = (await admin.fetchTopicMetadata({ topics: [TOPIC] })).topics;
    assert.equal(meta!.partitions.length, 6);

    await admin.createTopics({ topics: [{ topic: 'small', numPartitions: 2 }], waitForLeaders: true });
    const small = new KafkaSink({ brokers: [broker.bootstrap], topic: 'small', partitions: 6 }, log);
    await small.start();
    await small.close();
    const [smallMeta] = (await admin.fetchTopicMetadata({ topics: ['small'] })).topics;
    assert.equal(smallMeta!.partitions.length, 2);
  });

  it('keys by vehicle: each vehicle in one partition, its batches in seq order', async () => {
    await writeRounds(5);
    const seen = await readTopic(written.length);
    assert.equal(seen.length, written.length);
    assert.deepEqual(new Set(seen.map((s) => idOf(s.batch))), new Set(written.map(idOf)));
    const partitionsOf = new Map<string, Set<number>>();
    for (const s of seen) partitionsOf.set(s.batch.vehicle, (partitionsOf.get(s.batch.vehicle) ?? new Set()).add(s.partition));
    for (const [vehicle, ps] of partitionsOf) assert.equal(ps.size, 1, `${vehicle} is in partitions ${[...ps]}`);
    assert.ok(new Set(seen.map((s) => s.partition)).size >= 4, 'twenty vehicles spread over the partitions');
    for (const vehicle of VEHICLES) {
      const seqs = seen
        .filter((s) => s.batch.vehicle === vehicle)
        .sort((x, y) => x.offset - y.offset)
        .map((s) => s.batch.readings[0]!.seq);
      assert.deepEqual(seqs, [1, 4, 7, 10, 13]);
    }
    assert.ok(
      seen.every((s) => s.receivedAt === s.timestamp),
      'the receive time in the record is its timestamp too, which consumers seek by',
    );
  });

  it('compresses a produce request only where gzip makes it smaller: several records, or one long one', async () => {
    const topic = 'gzip-check';
    const gzip = new KafkaSink(
      { brokers: [broker.bootstrap], topic, partitions: 1, clientId: 'test-gzip', compression: 'gzip' },
      log.child({ sink: 'gzip' }),
    );
    await gzip.start();
    try {
      const batchOf = (readings: number): Batch => {
        const now = Date.now();
        const rs: Reading[] = Array.from({ length: readings }, (_, i) => ({
          vehicle: 'truck-gz',
          seq: i + 1,
          ts: now - readings + i,
          clock: 'synced',
          sensor: 'engine_temp',
          value: 80 + (i % 7),
          quality: 'good',
        }));
        return { vehicle: 'truck-gz', headTs: now, readings: rs };
      };
      // One request each: a lone small batch, five small ones in one turn, a lone batch of 200 readings.
      await gzip.write(sinkRecord(batchOf(10), Date.now()));
      await Promise.all(Array.from({ length: 5 }, () => gzip.write(sinkRecord(batchOf(10), Date.now()))));
      await gzip.write(sinkRecord(batchOf(200), Date.now()));
    } finally {
      await gzip.close();
    }
    const batches = (await broker.dumpLog(topic, 0)).split('\n').filter((l) => l.startsWith('baseOffset'));
    assert.deepEqual(
      batches.map((l) => `${/ count: (\d+)/.exec(l)?.[1]} ${/compresscodec: (\w+)/.exec(l)?.[1]}`),
      ['1 none', '5 gzip', '1 gzip'],
    );
  });

  it("a group of two sources receives every batch exactly once when committing as it goes, skipping a malformed record and reading an earlier release's", async () => {
    const producer = client().producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const [meta] = await producer.send({ topic: TOPIC, messages: [{ key: VEHICLES[0]!, value: Buffer.from([0xfb, 0x10, 0x01]) }] });
    // As the gateway wrote records before they carried their receive time: the bare batch, the time in a header and the timestamp.
    const legacy = nextBatch(VEHICLES[1]!);
    const legacyAt = String(Date.now() - 5_000);
    await producer.send({
      topic: TOPIC,
      messages: [{ key: legacy.vehicle, value: encodeBatch(legacy), timestamp: legacyAt, headers: { receivedAt: legacyAt } }],
    });
    written.push(legacy);
    await producer.disconnect();
    malformed = { partition: meta!.partition, offset: Number(meta!.baseOffset) };
    // A valid batch after it, so the committed offset moves past it.
    const after = nextBatch(VEHICLES[0]!);
    await sink.write(sinkRecord(after, Date.now()));
    written.push(after);

    const fromA: KafkaRecord[] = [];
    const fromB: KafkaRecord[] = [];
    await waitFor(
      'every batch through the group',
      async () => {
        await drain(a, fromA);
        await drain(b, fromB);
        return fromA.length + fromB.length >= written.length;
      },
      20_000,
    );
    await sleep(1_500);
    await drain(a, fromA);
    await drain(b, fromB);
    const all = [...fromA, ...fromB];
    assert.equal(all.length, written.length);
    assert.deepEqual(new Set(all.map((r) => idOf(r.batch))), new Set(written.map(idOf)));
    assert.ok(all.every((r) => !r.rebuild));
    assert.equal(all.find((r) => idOf(r.batch) === idOf(legacy))?.receivedAt, Number(legacyAt), 'the legacy record keeps its receive time');
    const partsA = new Set(fromA.map((r) => r.partition));
    assert.ok(
      fromB.every((r) => !partsA.has(r.partition)),
      'members hold disjoint partitions',
    );
  });

  it('a member that goes away hands its partitions over; what was committed comes back as rebuild', async () => {
    const partsB = new Set((await groupMembers()).get('det-b'));
    const partsA = new Set([0, 1, 2, 3, 4, 5].filter((p) => !partsB.has(p)));
    await writeRounds(2);
    const ends = new Map((await admin.fetchTopicOffsets(TOPIC)).map((p) => [p.partition, Number(p.high)]));
    const before = await committedOffsets();
    const forB = [...partsB].reduce((n, p) => n + ends.get(p)! - before.get(p)!, 0);
    const fromA: KafkaRecord[] = [];
    const fromB: KafkaRecord[] = [];
    // b commits as it goes, except its last poll: those records stay handed out, uncommitted.
    let held: KafkaRecord[] = [];
    await waitFor(
      'the new batches handed out',
      async () => {
        await drain(a, fromA);
        if (fromB.length < forB) {
          held = await b.poll(5);
          fromB.push(...held);
          if (held.length > 0 && fromB.length < forB) await b.commit(held.at(-1)!);
        }
        return fromA.length + fromB.length >= 2 * VEHICLES.length;
      },
      20_000,
    );
    assert.ok(held.length > 0 && fromB.length === forB);
    await b.close();

    const committed = await committedOffsets();
    for (const r of held) assert.ok(r.offset >= committed.get(r.partition)!, 'the held records are uncommitted');

    const taken: KafkaRecord[] = [];
    const offsetsOf = (p: number) =>
      Array.from({ length: ends.get(p)! }, (_, i) => i).filter((o) => p !== malformed!.partition || o !== malformed!.offset);
    const expected = [...partsB].reduce((n, p) => n + offsetsOf(p).length, 0);
    await waitFor(
      `b's ${expected} records re-read by a`,
      async () => {
        await drain(a, taken);
        return taken.filter((r) => partsB.has(r.partition)).length >= expected;
      },
      30_000,
    );
    await sleep(1_000);
    await drain(a, taken);

    // Rebuilt from the start of each partition (all of it is within rebuildMs), once each.
    for (const p of partsB) {
      const got = taken.filter((r) => r.partition === p);
      assert.deepEqual(
        got.map((r) => r.offset),
        offsetsOf(p),
        `partition ${p}`,
      );
      for (const r of got) assert.equal(r.rebuild, r.offset < committed.get(p)!, `partition ${p} offset ${r.offset}`);
    }
    const takenIds = new Map(taken.map((r) => [idOf(r.batch), r]));
    for (const r of held) assert.equal(takenIds.get(idOf(r.batch))?.rebuild, false, `${idOf(r.batch)} is evaluated anew`);
    assert.ok(
      taken.some((r) => r.rebuild),
      'some records are rebuilt',
    );
    // a kept its own partitions and had committed them: they come again too (a member may have
    // lost them meanwhile without hearing so), only to rebuild, nothing of them evaluated anew.
    assert.deepEqual(
      taken.filter((r) => partsA.has(r.partition) && !r.rebuild),
      [],
    );
    await a.close();
  });

  it('a broker outage fails writes and health, and after the broker returns writes go through with nothing lost', async () => {
    await broker.stop();
    const batch = nextBatch(VEHICLES[0]!);
    const started = Date.now();
    const outcome = await Promise.race([
      sink.write(sinkRecord(batch, Date.now())).then(
        () => 'written',
        () => 'failed',
      ),
      delay(30_000, 'still waiting', { ref: false }),
    ]);
    assert.equal(outcome, 'failed');
    log.info({ ms: Date.now() - started }, 'write failed while the broker was down');
    assert.equal(sink.health().ok, false);
    assert.ok(sink.health().detail);

    await sleep(2_000);
    await broker.restart();
    // The gateway's way: retry the held write with a pause until the sink takes it.
    await waitFor(
      'the held write accepted after the restart',
      () =>
        sink.write(sinkRecord(batch, Date.now())).then(
          () => true,
          () => false,
        ),
      40_000,
      500,
    );
    written.push(batch);
    assert.deepEqual(sink.health(), { ok: true });
    await writeRounds(1);

    const seen = await readTopic(written.length);
    assert.deepEqual(new Set(seen.map((s) => idOf(s.batch))), new Set(written.map(idOf)));
  });
});
