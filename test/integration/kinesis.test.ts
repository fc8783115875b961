import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { CreateThingCommand, IoTClient } from '@aws-sdk/client-iot';
import { GetThingShadowCommand, IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import {
  CreateStreamCommand,
  KinesisClient,
  ListShardsCommand,
  MergeShardsCommand,
  PutRecordCommand,
  SplitShardCommand,
  type PutRecordsCommandInput,
  type PutRecordsCommandOutput,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { LocalShardAssignment } from '../../cloud/sources/kinesis-local-assignment.js';
import { KinesisSource, type KinesisRecord } from '../../cloud/sources/kinesis-source.js';
import { IotCoreSink, MAX_PUBLISH_BYTES, type ReportedState } from '../../gateway/sinks/iot-core/iot-core-sink.js';
import { chunkCalls, KinesisSink, MAX_BYTES_PER_CALL } from '../../gateway/sinks/kinesis/kinesis-sink.js';
import { gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { sinkRecord } from '../../gateway/sink.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import type { Batch } from '../../shared/contract/batch.js';
import { decodeBatch, encodeBatch } from '../../shared/contract/codec.js';
import { parseTopic } from '../../shared/contract/topics.js';
import type { Reading } from '../../shared/contract/reading.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';
import { recordedRequests, startMoto, startRecording, type MotoServer } from '../support/moto-server.js';
import { ROOT } from '../support/paths.js';

const CREDS = { region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' };
const VEHICLES = Array.from({ length: 20 }, (_, i) => `truck-${String(i).padStart(2, '0')}`);
const READINGS_PER_BATCH = 3;
const BASE_TS = Date.now() - 60_000;

/** Batch `round` (1-based) of a vehicle: seqs follow on from the previous round's. */
function batchOf(vehicle: string, round: number): Batch {
  const first = (round - 1) * READINGS_PER_BATCH + 1;
  const readings: Reading[] = Array.from({ length: READINGS_PER_BATCH }, (_, i) => {
    const seq = first + i;
    const base = { vehicle, seq, ts: BASE_TS + seq * 100, clock: 'synced' as const, quality: 'good' as const };
    if (i === 0) return { ...base, sensor: 'engine_temp' as const, value: 80 + round / 4 };
    if (i === 1) return { ...base, sensor: 'speed' as const, value: 50 + round };
    return {
      ...base,
      sensor: 'gps' as const,
      value: 50,
      position: { lat: 48 + round / 1000, lon: 11.5 + round / 1000, heading: 90.5, fix: '3d' as const },
    };
  });
  return { vehicle, headTs: readings.at(-1)!.ts, readings };
}

const firstSeq = (r: KinesisRecord) => r.batch.readings[0]!.seq;
const roundOf = (r: KinesisRecord) => (firstSeq(r) - 1) / READINGS_PER_BATCH + 1;

/** Polls until `count` records came, then once more after the shards went idle to see that no more do. */
async function readAll(source: KinesisSource, count: number, pollMax = 50): Promise<KinesisRecord[]> {
  const got: KinesisRecord[] = [];
  await waitFor(
    `${count} records from ${source.streamName}`,
    async () => {
      got.push(...(await source.poll(pollMax)));
      return got.length >= count;
    },
    15_000,
    20,
  );
  await sleep(150);
  got.push(...(await source.poll(pollMax)));
  return got;
}

/** Each vehicle's rounds in the order they were read. */
function roundsByVehicle(records: KinesisRecord[]): Map<string, number[]> {
  const by = new Map<string, number[]>();
  for (const r of records) by.set(r.vehicle, [...(by.get(r.vehicle) ?? []), roundOf(r)]);
  return by;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('Kinesis and IoT Core on a moto server', () => {
  let moto: MotoServer;
  let kinesis: KinesisClient;
  const dir = tempDir('fleet-kinesis-');
  const aws = () => ({ ...CREDS, endpoint: moto.endpoint });
  const source = (streamName: string, checkpoint: string, rebuildMs: number) =>
    new KinesisSource({
      ...aws(),
      streamName,
      assignment: new LocalShardAssignment(join(dir, checkpoint), streamName),
      rebuildMs,
      idleReadMs: 50,
      listShardsMs: 100,
    });
  const shardsOf = async (streamName: string) => (await kinesis.send(new ListShardsCommand({ StreamName: streamName }))).Shards ?? [];

  beforeAll(async () => {
    moto = await startMoto();
    kinesis = new KinesisClient(awsClientConfig(aws()));
  });

  afterAll(async () => {
    kinesis?.destroy();
    await moto?.stop();
  });

  describe('one stream, written by the sink and read by the source', () => {
    const stream = 'fleet.telemetry';
    const receivedAt = new Map<string, number>();
    const putCalls: number[] = [];

    it('creates a 2-shard stream and batches the writes of one turn, one record per vehicle per call', async () => {
      const client = new KinesisClient(awsClientConfig(aws()));
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'PutRecordsCommand') putCalls.push((args.input as PutRecordsCommandInput).Records!.length);
          return next(args);
        },
        { step: 'initialize', name: 'countPutRecords' },
      );
      const sink = new KinesisSink({ ...aws(), client });
      await sink.start();
      const shards = await shardsOf(stream);
      assert.equal(shards.length, 2);

      const writes: Promise<void>[] = [];
      for (const round of range(1, 5)) {
        for (const v of VEHICLES) {
          const at = Date.now() + round;
          receivedAt.set(`${v}/${round}`, at);
          writes.push(sink.write(sinkRecord(batchOf(v, round), at)));
        }
      }
      await Promise.all(writes);
      // 100 writes in one turn: five calls, since a vehicle has one record in flight at a time.
      assert.deepEqual(putCalls, [20, 20, 20, 20, 20]);
      assert.deepEqual(sink.health(), { ok: true });
      await sink.close();
    });

    it('reads every batch once, in seq order per vehicle, across both shards', async () => {
      const src = source(stream, 'a.db', 0);
      const records = await readAll(src, 100);
      assert.equal(records.length, 100);
      assert.equal(new Set(records.map((r) => r.shardId)).size, 2);
      for (const [vehicle, rounds] of roundsByVehicle(records)) assert.deepEqual(rounds, range(1, 5), vehicle);
      for (const r of records) {
        assert.equal(r.rebuild, false);
        assert.equal(r.receivedAt, receivedAt.get(`${r.vehicle}/${roundOf(r)}`));
        assert.deepEqual(r.batch, batchOf(r.vehicle, roundOf(r)));
      }
      await src.commit(records.at(-1)!);
      await src.close();
    });

    it('resumes after its checkpoint, and re-reads the rebuild window flagged as rebuild', async () => {
      // Rounds 1-5 arrived well before round 6: a 1 s rebuild window after round 6 leaves them out.
      await sleep(1_500);
      const sink = new KinesisSink(aws());
      await sink.start();
      await Promise.all(VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, 6), Date.now()))));

      const resumed = source(stream, 'a.db', 0);
      const fresh = await readAll(resumed, 20);
      assert.deepEqual(fresh.map(roundOf), Array(20).fill(6));
      assert.ok(fresh.every((r) => !r.rebuild));
      await resumed.commit(fresh.at(-1)!);
      await resumed.close();

      const rebuilding = source(stream, 'a.db', 1_000);
      const again = await readAll(rebuilding, 20);
      assert.deepEqual(again.map(roundOf), Array(20).fill(6));
      assert.ok(
        again.every((r) => r.rebuild),
        'records up to the checkpoint are flagged rebuild',
      );
      // The detector commits what it handled, rebuild records too: that must not move a checkpoint back.
      await rebuilding.commit(again[4]!);
      await Promise.all(VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, 7), Date.now()))));
      const after7 = await readAll(rebuilding, 20);
      assert.deepEqual(after7.map(roundOf), Array(20).fill(7));
      assert.ok(after7.every((r) => !r.rebuild));
      await rebuilding.close();
      await sink.close();

      const restarted = source(stream, 'a.db', 0);
      assert.deepEqual((await readAll(restarted, 20)).map(roundOf), Array(20).fill(7));
      await restarted.close();
    });
  });

  describe('a batch the detector could not handle', () => {
    it('is handed out again from the first record not committed, in order per vehicle', async () => {
      const stream = 'fleet.rewind';
      await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
      const sink = new KinesisSink({ ...aws(), streamName: stream });
      await sink.start();
      for (const round of [1, 2]) await Promise.all(VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now()))));
      await sink.close();
      const src = source(stream, 'rewind.db', 0);
      const first = await readAll(src, 40);
      assert.equal(first.length, 40);
      await src.commit(first[9]!);
      // The detector's store refused the rest: it rewinds, as after any failed round.
      await src.rewind();
      const again = await readAll(src, 30);
      const key = (r: KinesisRecord) => `${r.shardId}/${r.sequenceNumber}`;
      assert.deepEqual(again.map(key).sort(), first.slice(10).map(key).sort());
      for (const [vehicle, rounds] of roundsByVehicle([...first.slice(0, 10), ...again])) assert.deepEqual(rounds, [1, 2], vehicle);
      await src.commit(again.at(-1)!);
      await src.close();
      const restarted = source(stream, 'rewind.db', 0);
      assert.deepEqual(await readAll(restarted, 0), [], 'everything committed');
      await restarted.close();
    });
  });

  describe('partial failures', () => {
    const stream = 'fleet.faults';

    /** A client on moto whose PutRecords fails the chosen records as Kinesis does: not stored, ErrorCode set. */
    function throttling(shouldFail: (record: PutRecordsRequestEntry) => boolean, calls: string[][]): KinesisClient {
      const client = new KinesisClient(awsClientConfig(aws()));
      client.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName !== 'PutRecordsCommand') return next(args);
          const input = args.input as PutRecordsCommandInput;
          const records = input.Records!;
          calls.push(records.map((r) => r.PartitionKey!));
          const failed = records.map(shouldFail);
          const kept = records.filter((_, i) => !failed[i]);
          const result =
            kept.length > 0
              ? await next({ ...args, input: { ...input, Records: kept } })
              : { output: { Records: [], $metadata: {} } as PutRecordsCommandOutput, response: {} };
          const stored = [...((result.output as PutRecordsCommandOutput).Records ?? [])];
          const Records = failed.map((f) =>
            f
              ? { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'Rate exceeded for shard (injected)' }
              : stored.shift()!,
          );
          return { ...result, output: { ...result.output, Records, FailedRecordCount: failed.filter(Boolean).length } };
        },
        { step: 'initialize', name: 'injectThrottling' },
      );
      return client;
    }

    it('retries only the failed record, and never lets a later record of its vehicle pass it', async () => {
      const calls: string[][] = [];
      let failuresLeft = 2;
      // truck-03's first record fails twice; the rest of the fleet goes through.
      const client = throttling((r) => r.PartitionKey === 'truck-03' && failuresLeft-- > 0, calls);
      const sink = new KinesisSink({ ...aws(), streamName: stream, client, retryBaseMs: 20, retryMaxMs: 100 });
      await sink.start();
      const done: string[] = [];
      const writes = range(1, 3).flatMap((round) =>
        VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now())).then(() => done.push(`${v}/${round}`))),
      );
      await Promise.all(writes);

      assert.deepEqual(
        done.filter((d) => d.startsWith('truck-03/')),
        ['truck-03/1', 'truck-03/2', 'truck-03/3'],
      );
      for (const call of calls) assert.equal(new Set(call).size, call.length, 'one record per vehicle per call');
      // Only truck-03 was resent: each other vehicle's record went out exactly once.
      const sent = calls.flat();
      assert.equal(sent.filter((v) => v === 'truck-03').length, 5);
      assert.equal(sent.length, 3 * VEHICLES.length + 2);

      const src = source(stream, 'faults.db', 0);
      const records = await readAll(src, 60);
      assert.equal(records.length, 60);
      for (const [vehicle, rounds] of roundsByVehicle(records)) assert.deepEqual(rounds, [1, 2, 3], vehicle);
      await src.close();
      await sink.close();
    });

    it("gives up on a record after a bounded time, failing the vehicle's later records with it", async () => {
      const client = throttling((r) => r.PartitionKey === 'truck-07', []);
      const sink = new KinesisSink({ ...aws(), streamName: stream, client, retryBaseMs: 20, retryMaxMs: 100, giveUpAfterMs: 400 });
      await sink.start();
      const started = Date.now();
      const results = await Promise.allSettled(
        range(4, 5).flatMap((round) => VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now())))),
      );
      const rejected = results.flatMap((r, i) => (r.status === 'rejected' ? [VEHICLES[i % VEHICLES.length]] : []));
      assert.deepEqual(rejected, ['truck-07', 'truck-07']);
      assert.match(String((results[7] as PromiseRejectedResult).reason), /ProvisionedThroughputExceededException/);
      assert.ok(Date.now() - started < 2_000);
      assert.equal(sink.health().ok, false);
      await sink.close();
    });

    it('splits calls at 500 records and at 5 MiB', async () => {
      const calls: string[][] = [];
      const sink = new KinesisSink({ ...aws(), streamName: stream, client: throttling(() => false, calls) });
      await sink.start();
      const many = Array.from({ length: 600 }, (_, i) => `bulk-${i}`);
      await Promise.all(many.map((v) => sink.write(sinkRecord(batchOf(v, 1), Date.now()))));
      assert.deepEqual(
        calls.map((c) => c.length),
        [500, 100],
      );
      await sink.close();
      const sizes = chunkCalls(Array.from({ length: 12 }, () => ({ size: 1000 * 1024 }))).map((c) => c.length);
      assert.deepEqual(sizes, [5, 5, 2]);
      assert.ok(5 * 1000 * 1024 <= MAX_BYTES_PER_CALL && 6 * 1000 * 1024 > MAX_BYTES_PER_CALL);
    });
  });

  describe('record format', () => {
    it("reads a bare contract payload, as an IoT rule's Kinesis action writes it, with its arrival as receive time", async () => {
      const stream = 'fleet.iot-routed';
      await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
      await kinesis.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'truck-00', Data: Buffer.from('not a batch') }));
      const put = await kinesis.send(
        new PutRecordCommand({ StreamName: stream, PartitionKey: 'truck-00', Data: encodeBatch(batchOf('truck-00', 1)) }),
      );
      const src = source(stream, 'routed.db', 0);
      const [record, ...rest] = await readAll(src, 1);
      assert.equal(rest.length, 0);
      assert.equal(src.counters.invalid, 1, 'the garbage record is skipped and counted');
      assert.equal(record!.sequenceNumber, put.SequenceNumber);
      assert.deepEqual(record!.batch, batchOf('truck-00', 1));
      assert.ok(Math.abs(record!.receivedAt - Date.now()) < 5_000);
      await src.close();
    });

    it('reads a record as earlier releases wrote it: the receive time in 8 bytes, big-endian, then the batch', async () => {
      const stream = 'fleet.previous-release';
      await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
      const receivedAt = Date.now() - 30_000;
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64BE(BigInt(receivedAt));
      await kinesis.send(
        new PutRecordCommand({
          StreamName: stream,
          PartitionKey: 'truck-00',
          Data: Buffer.concat([prefix, encodeBatch(batchOf('truck-00', 1))]),
        }),
      );
      const src = source(stream, 'previous-release.db', 0);
      const [record, ...rest] = await readAll(src, 1);
      assert.equal(rest.length, 0);
      assert.equal(record!.receivedAt, receivedAt);
      assert.deepEqual(record!.batch, batchOf('truck-00', 1));
      await src.close();
    });

    it('ships sample configs the gateway accepts', () => {
      for (const sink of ['kinesis', 'iot-core']) {
        const sample = readFileSync(join(ROOT, 'gateway', 'sinks', sink, 'sample.json'), 'utf8');
        assert.ok(gatewayConfigSchema.parse(JSON.parse(sample)).sinks.includes(sink as 'kinesis'), sink);
      }
    });
  });

  describe('resharding', () => {
    it('split: the children are read only after the parent is read to its end', async () => {
      const stream = 'fleet.split';
      const sink = new KinesisSink({ ...aws(), streamName: stream });
      await sink.start();
      for (const round of [1, 2]) await Promise.all(VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now()))));
      await sink.close();
      const [parent] = await shardsOf(stream);
      const { StartingHashKey, EndingHashKey } = parent!.HashKeyRange!;
      const middle = (BigInt(StartingHashKey!) + BigInt(EndingHashKey!)) / 2n;
      await kinesis.send(
        new SplitShardCommand({ StreamName: stream, ShardToSplit: parent!.ShardId!, NewStartingHashKey: middle.toString() }),
      );
      const children = (await shardsOf(stream)).filter((s) => s.ParentShardId === parent!.ShardId).map((s) => s.ShardId!);
      assert.equal(children.length, 2);

      const src = source(stream, 'split.db', 0);
      const records = await src.poll(1);
      const phase = (id: string) => src.status().find((s) => s.shardId === id)?.phase;
      assert.equal(phase(parent!.ShardId!), 'reading');
      for (const c of children) assert.equal(phase(c), 'waiting', `${c} waits for its parent`);

      records.push(...(await readAll(src, 39, 5)));
      assert.equal(records.length, 40);
      for (const [vehicle, rounds] of roundsByVehicle(records)) assert.deepEqual(rounds, [1, 2], vehicle);
      await waitFor('the children opened', async () => {
        records.push(...(await src.poll(50)));
        return children.every((c) => phase(c) === 'reading');
      });
      assert.equal(phase(parent!.ShardId!), 'ended');
      assert.equal(records.length, 40);
      await src.close();
    });

    it("merge: the child's records come after every record of both parents", async () => {
      const stream = 'fleet.merge';
      const sink = new KinesisSink({ ...aws(), streamName: stream });
      await sink.start();
      for (const round of [1, 2]) await Promise.all(VEHICLES.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now()))));
      await sink.close();
      const [a, b] = await shardsOf(stream);
      await kinesis.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: a!.ShardId!, AdjacentShardToMerge: b!.ShardId! }));
      const child = (await shardsOf(stream)).find((s) => s.ParentShardId === a!.ShardId && s.AdjacentParentShardId === b!.ShardId);
      assert.ok(child, 'the merged shard names both parents');

      // moto copies the parents' records into the merged shard: the copies must come last,
      // also when small polls leave each parent unfinished many times over.
      const src = source(stream, 'merge.db', 0);
      const records = await readAll(src, 80, 5);
      assert.equal(records.length, 80);
      assert.deepEqual(
        records.map((r) => r.shardId === child.ShardId),
        [...Array(40).fill(false), ...Array(40).fill(true)],
      );
      for (const [vehicle, rounds] of roundsByVehicle(records.slice(0, 40))) assert.deepEqual(rounds, [1, 2], vehicle);
      assert.deepEqual(
        src
          .status()
          .map((s) => s.phase)
          .sort(),
        ['ended', 'ended', 'reading'],
      );
      await src.close();
    });
  });

  describe('IoT Core sink', () => {
    const vehicles = VEHICLES.slice(0, 5);
    const intervalMs = 400;

    it('publishes each batch to its telemetry topic and keeps each shadow at the last position', async () => {
      const iot = new IoTClient(awsClientConfig(aws()));
      // Real IoT Core keeps shadows of unregistered things; moto wants the thing registered.
      for (const v of vehicles) await iot.send(new CreateThingCommand({ thingName: v }));
      iot.destroy();
      await startRecording(moto.endpoint);

      const sink = new IotCoreSink({ ...aws(), shadowIntervalMs: intervalMs });
      await sink.start();
      const started = Date.now();
      for (const round of [1, 2, 3]) await Promise.all(vehicles.map((v) => sink.write(sinkRecord(batchOf(v, round), Date.now()))));
      assert.ok(Date.now() - started < intervalMs, 'the three rounds fit in one shadow interval');

      const data = new IoTDataPlaneClient(awsClientConfig(aws()));
      const shadowOf = async (v: string) => {
        const out = await data.send(new GetThingShadowCommand({ thingName: v }));
        return (JSON.parse(Buffer.from(out.payload!).toString()) as { state: { reported: ReportedState } }).state.reported;
      };
      const last = batchOf('x', 3).readings;
      await waitFor(
        'every shadow at the last position',
        async () => {
          const shadows = await Promise.all(vehicles.map(shadowOf));
          return shadows.every((s) => s.position?.lat === last[2]!.position!.lat);
        },
        5_000,
        100,
      );
      const shadow = await shadowOf(vehicles[0]!);
      assert.deepEqual(shadow, { ts: last[2]!.ts, engine_temp: last[0]!.value, speed: last[1]!.value, position: last[2]!.position });
      await sink.close();
      data.destroy();

      const requests = (await recordedRequests(moto.endpoint)).filter((r) => r.method === 'POST');
      const published = requests.filter((r) => new URL(r.url).pathname.startsWith('/topics/'));
      assert.equal(published.length, 15);
      for (const p of published) {
        const url = new URL(p.url);
        const topic = parseTopic(decodeURIComponent(url.pathname.slice('/topics/'.length)));
        assert.equal(topic?.kind, 'telemetry');
        assert.equal(url.searchParams.get('qos'), '1');
        const batch = decodeBatch(topic.vehicle, p.body);
        assert.deepEqual(batch, batchOf(topic.vehicle, (batch.readings[0]!.seq - 1) / READINGS_PER_BATCH + 1));
      }
      // Three rounds within one interval: the first update at once, then at most one more with the last state.
      for (const v of vehicles) {
        const updates = requests.filter((r) => new URL(r.url).pathname === `/things/${v}/shadow`);
        assert.ok(updates.length >= 1 && updates.length <= 2, `${v}: ${updates.length} shadow updates`);
      }
    });

    it('publishes a batch over the 128 KB message limit as consecutive smaller batches', async () => {
      await startRecording(moto.endpoint);
      const vehicle = vehicles[0]!;
      const readings: Reading[] = Array.from({ length: 10_000 }, (_, i) => ({
        vehicle,
        seq: 1_000 + i,
        ts: BASE_TS + i * 10,
        clock: 'synced',
        sensor: 'gps',
        value: 42.5,
        quality: 'good',
        position: { lat: (48e7 + i * 100) / 1e7, lon: (11e7 + i * 100) / 1e7, heading: 180, fix: '3d' },
      }));
      const big: Batch = { vehicle, headTs: readings.at(-1)!.ts, readings };
      assert.ok(encodeBatch(big).length > MAX_PUBLISH_BYTES);
      const sink = new IotCoreSink({ ...aws(), shadowIntervalMs: intervalMs });
      await sink.write(sinkRecord(big, Date.now()));
      await sink.close();

      const parts = (await recordedRequests(moto.endpoint)).filter((r) => new URL(r.url).pathname.startsWith('/topics/'));
      assert.ok(parts.length > 1);
      assert.ok(parts.every((p) => p.body.length <= MAX_PUBLISH_BYTES));
      assert.deepEqual(
        parts.flatMap((p) => decodeBatch(vehicle, p.body).readings),
        readings,
      );
    });
  });
});
