import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import {
  CreateStreamCommand,
  KinesisClient,
  ListShardsCommand,
  MergeShardsCommand,
  SplitShardCommand,
  type Shard,
} from '@aws-sdk/client-kinesis';
import { LeaseShardAssignment } from '../../cloud/sources/kinesis-lease-assignment.js';
import { DynamoLeaseTable, SHARD_END, type Lease } from '../../cloud/sources/kinesis-lease-table.js';
import { KinesisSource, type KinesisRecord } from '../../cloud/sources/kinesis-source.js';
import { KinesisSink } from '../../gateway/sinks/kinesis/kinesis-sink.js';
import { sinkRecord } from '../../gateway/sink.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import type { Batch } from '../../shared/contract/batch.js';
import type { Reading } from '../../shared/contract/reading.js';
import { freePort, getJson, kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';
import { queryFile } from '../support/sqlite.js';

const CREDS = { region: 'us-east-1', accessKeyId: 'test', secretAccessKey: 'test' };
const READINGS_PER_BATCH = 3;
const BASE_TS = Date.now() - 120_000;
const HOT = 110;

/** Batch `round` (1-based) of a vehicle: an engine temperature (hot or normal), a speed and a position. */
function batchOf(vehicle: string, round: number, hot = false): Batch {
  const first = (round - 1) * READINGS_PER_BATCH + 1;
  const readings: Reading[] = Array.from({ length: READINGS_PER_BATCH }, (_, i) => {
    const seq = first + i;
    const base = { vehicle, seq, ts: BASE_TS + seq * 100, clock: 'synced' as const, quality: 'good' as const };
    if (i === 0) return { ...base, sensor: 'engine_temp' as const, value: hot ? HOT : 80 };
    if (i === 1) return { ...base, sensor: 'speed' as const, value: 50 + round };
    return { ...base, sensor: 'gps' as const, value: 50, position: { lat: 48, lon: 11.5, heading: 90, fix: '3d' as const } };
  });
  return { vehicle, headTs: readings.at(-1)!.ts, readings };
}

const roundOf = (r: KinesisRecord) => (r.batch.readings[0]!.seq - 1) / READINGS_PER_BATCH + 1;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const vehicles = (n: number) => Array.from({ length: n }, (_, i) => `truck-${String(i).padStart(2, '0')}`);

/** The shard a partition key lands in: the MD5 of the key as a 128-bit number, within the shard's hash key range. */
function shardOf(shards: Shard[], key: string): string {
  const hash = BigInt(`0x${createHash('md5').update(key).digest('hex')}`);
  const shard = shards.find(
    (s) =>
      !s.SequenceNumberRange?.EndingSequenceNumber &&
      hash >= BigInt(s.HashKeyRange!.StartingHashKey!) &&
      hash <= BigInt(s.HashKeyRange!.EndingHashKey!),
  );
  return shard!.ShardId!;
}

describe('Kinesis shard leases in DynamoDB on a moto server', () => {
  let moto: MotoServer;
  let kinesis: KinesisClient;
  const dir = tempDir('fleet-leases-');
  const aws = () => ({ ...CREDS, endpoint: moto.endpoint });
  const shardsOf = async (stream: string) => (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const leaseTable = (tableName: string) => new DynamoLeaseTable({ ...aws(), tableName });

  async function createStream(stream: string, shards: number): Promise<void> {
    await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: shards }));
  }

  async function write(stream: string, rounds: number[], fleet: string[], hot: string[] = []): Promise<void> {
    const sink = new KinesisSink({ ...aws(), streamName: stream });
    await sink.start();
    for (const round of rounds) await Promise.all(fleet.map((v) => sink.write(sinkRecord(batchOf(v, round, hot.includes(v)), Date.now()))));
    await sink.close();
  }

  beforeAll(async () => {
    moto = await startMoto();
    kinesis = new KinesisClient(awsClientConfig(aws()));
  });

  afterAll(async () => {
    kinesis?.destroy();
    await moto?.stop();
  });

  describe('readers in this process', () => {
    /** Closed after each test, also one that failed: a reader left open keeps renewing its leases. */
    const open: KinesisSource[] = [];
    afterEach(async () => {
      for (const reader of open.splice(0)) await reader.close();
    });
    const leased = (stream: string, table: string, workerId: string, leaseTimeMs: number) => {
      const reader = new KinesisSource({
        ...aws(),
        streamName: stream,
        assignment: new LeaseShardAssignment({ ...aws(), tableName: table, workerId, leaseTimeMs }),
        rebuildMs: 0,
        idleReadMs: 50,
        listShardsMs: 200,
      });
      open.push(reader);
      return reader;
    };

    it('a reader whose lease was taken cannot move its checkpoint, and stops reading the shard', async () => {
      const stream = 'fleet.stolen';
      const table = 'leases-stolen';
      await createStream(stream, 1);
      await write(stream, [1, 2, 3], vehicles(5));
      const reader = leased(stream, table, 'reader', 10_000);
      const got: KinesisRecord[] = [];
      await waitFor('15 records', async () => (got.push(...(await reader.poll(50))), got.length >= 15), 30_000);
      await reader.commit(got[4]!);
      const leases = leaseTable(table);
      const [before] = await leases.list();
      assert.equal(before?.owner, 'reader');
      assert.equal(before.checkpoint, got[4]!.sequenceNumber);

      // Another worker takes the lease (a steal is a take on the counter just read; retried if a renewal moved it).
      const stolen = await waitFor('the lease stolen', async () => {
        const [lease] = await leases.list();
        return leases.take(lease!, 'thief');
      });
      assert.equal(stolen.owner, 'thief');
      // The reader commits what it read before it knew: refused, and the checkpoint stays the thief's.
      await reader.commit(got.at(-1)!);
      const [after] = await leases.list();
      assert.equal(after?.owner, 'thief');
      assert.equal(after.checkpoint, got[4]!.sequenceNumber);
      assert.equal(reader.status()[0]?.phase, 'elsewhere');
      await write(stream, [4], vehicles(5));
      await sleep(500);
      assert.deepEqual(await reader.poll(50), [], 'nothing more is read from a shard another reader holds');
      leases.close();
    });

    it('a reader whose lease table stops answering is unhealthy, and holds nothing once its leases could have expired', async () => {
      // A moto server of its own, to stop.
      const own = await startMoto();
      const ownAws = { ...CREDS, endpoint: own.endpoint };
      const ownKinesis = new KinesisClient(awsClientConfig(ownAws));
      try {
        const stream = 'fleet.lonely';
        await ownKinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
        const leaseTimeMs = 2_000;
        const reader = new KinesisSource({
          ...ownAws,
          streamName: stream,
          assignment: new LeaseShardAssignment({ ...ownAws, tableName: 'leases-lonely', workerId: 'lonely', leaseTimeMs }),
          rebuildMs: 0,
          listShardsMs: 200,
        });
        open.push(reader);
        await waitFor('the lease held', async () => (await reader.poll(10), reader.health().shardsHeld === 1), 30_000);
        assert.equal(reader.health().ok, true);
        await own.stop();
        const stoppedAt = Date.now();
        const unhealthy = await waitFor('unhealthy', () => !reader.health().ok && reader.health(), 30_000);
        assert.match(unhealthy.detail ?? '', /^lease table leases-lonely: /);
        await waitFor('nothing held', () => reader.health().shardsHeld === 0, 30_000);
        assert.ok(Date.now() - stoppedAt <= leaseTimeMs + 2_000, `held for ${Date.now() - stoppedAt} ms`);
      } finally {
        ownKinesis.destroy();
        await own.stop();
      }
    });

    /** Polls the readers in turn, committing what each read, until `done`; every record in read order, with its reader. */
    async function readTogether(readers: KinesisSource[], done: (reads: KinesisRecord[]) => boolean, observe = () => {}) {
      const reads: (KinesisRecord & { reader: number })[] = [];
      await waitFor(
        'every record read',
        async () => {
          for (const [i, reader] of readers.entries()) {
            const got = await reader.poll(7);
            reads.push(...got.map((r) => ({ ...r, reader: i })));
            if (got.length > 0) await reader.commit(got.at(-1)!);
            observe();
          }
          return done(reads);
        },
        60_000,
        20,
      );
      return reads;
    }

    const roundsOf = (reads: KinesisRecord[], v: string) => reads.filter((r) => r.vehicle === v).map(roundOf);

    it('split: a child is read by either reader only after its parent was read to its end, in order per vehicle', async () => {
      const stream = 'fleet.split';
      const table = 'leases-split';
      const fleet = vehicles(20);
      await createStream(stream, 2);
      await write(stream, [1, 2], fleet);
      const [parent, other] = await shardsOf(stream);
      const { StartingHashKey, EndingHashKey } = parent!.HashKeyRange!;
      const middle = (BigInt(StartingHashKey!) + BigInt(EndingHashKey!)) / 2n;
      await kinesis.send(
        new SplitShardCommand({ StreamName: stream, ShardToSplit: parent!.ShardId!, NewStartingHashKey: middle.toString() }),
      );
      const children = (await shardsOf(stream)).filter((s) => s.ParentShardId === parent!.ShardId).map((s) => s.ShardId!);
      assert.equal(children.length, 2);
      // moto keeps writing a split shard's keys to the parent: the children stay empty there.
      await write(stream, [3, 4], fleet);
      const inParent = (await shardsOf(stream)).find((s) => s.ShardId === parent!.ShardId)!;
      const parentRecords = Number(inParent.SequenceNumberRange!.EndingSequenceNumber);

      const readers = [leased(stream, table, 'a', 3_000), leased(stream, table, 'b', 3_000)];
      const phases: { child: string; phase: string; parentRead: number }[] = [];
      let reads: KinesisRecord[] = [];
      const fromParent = () => reads.filter((r) => r.shardId === parent!.ShardId).length;
      reads = await readTogether(
        readers,
        (r) => (
          (reads = r),
          new Set(r.map((x) => `${x.vehicle}/${roundOf(x)}`)).size === fleet.length * 4 &&
            children.every((c) => phases.some((p) => p.child === c && p.phase === 'reading'))
        ),
        () => {
          for (const reader of readers)
            for (const s of reader.status())
              if (children.includes(s.shardId)) phases.push({ child: s.shardId, phase: s.phase, parentRead: fromParent() });
        },
      );
      assert.ok(
        phases.some((p) => p.phase === 'waiting' && p.parentRead < parentRecords),
        'a child was held while its parent was being read',
      );
      for (const p of phases.filter((x) => x.phase === 'reading'))
        assert.ok(p.parentRead >= parentRecords, `${p.child} read after ${p.parentRead} of ${parentRecords} parent records`);
      for (const v of fleet) assert.deepEqual([...new Set(roundsOf(reads, v))], [1, 2, 3, 4], v);
      assert.ok(reads.some((r) => r.shardId === other!.ShardId));
      const leases = leaseTable(table);
      const parentLease = (await leases.list()).find((l) => l.shardId === parent!.ShardId);
      assert.equal(parentLease?.checkpoint, SHARD_END);
      assert.equal(parentLease.owner, undefined, 'a finished lease is released');
      leases.close();
    });

    it("merge: two readers read the child's records only after every record of both parents", async () => {
      const stream = 'fleet.merge';
      const fleet = vehicles(20);
      await createStream(stream, 2);
      await write(stream, [1, 2], fleet);
      const [a, b] = await shardsOf(stream);
      await kinesis.send(new MergeShardsCommand({ StreamName: stream, ShardToMerge: a!.ShardId!, AdjacentShardToMerge: b!.ShardId! }));
      const child = (await shardsOf(stream)).find((s) => s.AdjacentParentShardId === b!.ShardId)!.ShardId!;
      // moto copies the parents' records into the merged shard: read early, they would come out of order.
      const readers = [leased(stream, 'leases-merge', 'a', 3_000), leased(stream, 'leases-merge', 'b', 3_000)];
      const reads = await readTogether(readers, (r) => r.filter((x) => x.shardId === child).length === fleet.length * 2);
      const fromChild = reads.map((r) => r.shardId === child);
      assert.equal(fromChild.indexOf(true), fromChild.lastIndexOf(false) + 1, 'every child record after every parent record');
      for (const v of fleet) assert.deepEqual(roundsOf(reads, v), [1, 2, 1, 2], v);
    });
  });

  describe('detectors as processes, sharing a 4-shard stream and one store', () => {
    const stream = 'fleet.telemetry';
    const table = 'fleet-detector-leases';
    const LEASE_TIME_MS = 3_000;
    /** A takeover waits out the lease time, then up to a round and a poll; generous for a loaded machine. */
    const TAKEOVER_MARGIN_MS = 7_000;
    const fleet = vehicles(16);
    const storePath = join(dir, 'cloud', 'fleet.db');
    const rulesFile = join(dir, 'rules.json');
    const detectors = new Map<string, { proc: Proc; opsPort: number }>();
    let hot: string;
    let hotShard: string;

    async function startDetector(name: string): Promise<void> {
      const opsPort = await freePort();
      // Alerts for the cab go to a gateway nobody runs here: delivery is not what these tests look at.
      const closedPort = await freePort();
      const proc = runFleet(
        [
          'detector',
          ...['--source', 'kinesis', '--kinesis-stream', stream, '--kinesis-leases', table],
          ...['--kinesis-lease-time-ms', String(LEASE_TIME_MS), '--kinesis-worker-id', name],
          ...['--aws-endpoint', moto.endpoint, '--aws-region', CREDS.region],
          ...['--data-dir', join(dir, name), '--store', storePath, '--rules-file', rulesFile],
          ...['--ops-port', String(opsPort), '--mqtt-url', `mqtt://127.0.0.1:${closedPort}`],
        ],
        { AWS_ACCESS_KEY_ID: CREDS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDS.secretAccessKey },
      );
      detectors.set(name, { proc, opsPort });
    }

    const healthOf = async (name: string) =>
      (
        await getJson<{ sourceDetail?: { shardsHeld: number } }>(`http://127.0.0.1:${detectors.get(name)!.opsPort}/healthz`).catch(
          () => undefined,
        )
      )?.body.sourceDetail?.shardsHeld;

    async function metric(name: string, metricName: string): Promise<number> {
      const text = await (await fetch(`http://127.0.0.1:${detectors.get(name)!.opsPort}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${metricName}{`) || l.startsWith(`${metricName} `));
      return Number(line?.split(' ').at(-1) ?? NaN);
    }

    /** Waits until each named detector holds the given number of shards; returns how long that took. */
    async function held(want: Record<string, number>, timeoutMs: number): Promise<number> {
      const started = Date.now();
      const tails = () =>
        Object.keys(want)
          .map((n) => `${n}: ${[...detectors.get(n)!.proc.stderr, ...detectors.get(n)!.proc.lines].slice(-8).join('\n')}`)
          .join('\n');
      await waitFor(
        `shards held: ${JSON.stringify(want)}`,
        async () => {
          for (const [name, n] of Object.entries(want)) {
            if (detectors.get(name)!.proc.child.exitCode !== null) throw new Error(`detector ${name} exited`);
            if ((await healthOf(name)) !== n) return false;
          }
          return true;
        },
        timeoutMs,
        100,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${tails()}`);
      });
      return Date.now() - started;
    }

    const storedSeqs = (vehicle: string) =>
      queryFile<{ seq: number }>(storePath, 'SELECT seq FROM readings WHERE vehicle = ? ORDER BY seq', vehicle).map((r) => r.seq);

    async function allStored(rounds: number): Promise<void> {
      await waitFor(
        `every reading of rounds 1-${rounds} stored`,
        () => fleet.every((v) => storedSeqs(v).length === rounds * READINGS_PER_BATCH),
        60_000,
        200,
      ).catch((err: Error) => {
        const missing = fleet
          .filter((v) => storedSeqs(v).length !== rounds * READINGS_PER_BATCH)
          .map((v) => `${v}: ${storedSeqs(v).length}`);
        const logs = [...detectors].map(
          ([n, d]) =>
            `${n}: ${d.proc.lines
              .filter((l) => !l.includes('"level":30'))
              .slice(-15)
              .join('\n')}`,
        );
        throw new Error(`${err.message}\n${missing.join(', ')}\n${logs.join('\n')}`);
      });
      for (const v of fleet) assert.deepEqual(storedSeqs(v), range(1, rounds * READINGS_PER_BATCH), v);
    }

    const leasesNow = async (): Promise<Lease[]> => {
      const t = leaseTable(table);
      try {
        return await t.list();
      } finally {
        t.close();
      }
    };

    beforeAll(async () => {
      mkdirSync(join(dir, 'cloud'));
      writeFileSync(
        rulesFile,
        JSON.stringify({
          windowMs: 1000,
          rules: [{ name: 'hot', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }],
        }),
      );
      await createStream(stream, 4);
    });

    afterAll(async () => {
      for (const { proc } of detectors.values()) {
        if (proc.child.signalCode === null && proc.child.exitCode === null) proc.child.kill('SIGCONT');
        await kill(proc, 'SIGKILL');
      }
    });

    it('two detectors split the shards 2/2 and together store every reading once', async () => {
      await startDetector('a');
      await startDetector('b');
      await held({ a: 2, b: 2 }, 60_000);
      // The vehicle that overheats is on one of a's shards, so a's death lands in the middle of its episode.
      const owners = new Map((await leasesNow()).map((l) => [l.shardId, l.owner]));
      const shards = await shardsOf(stream);
      hot = fleet.find((v) => owners.get(shardOf(shards, v)) === 'a')!;
      hotShard = shardOf(shards, hot);
      await write(stream, range(1, 4), fleet, [hot]);
      await allStored(4);
      const readings = (await metric('a', 'fleet_detector_readings_total')) + (await metric('b', 'fleet_detector_readings_total'));
      assert.equal(readings, fleet.length * 4 * READINGS_PER_BATCH, 'each reading evaluated by one detector');
      assert.equal(await metric('a', 'fleet_detector_duplicates_total'), 0);
      assert.equal(await metric('b', 'fleet_detector_duplicates_total'), 0);
      assert.ok((await metric('a', 'fleet_detector_readings_total')) > 0 && (await metric('b', 'fleet_detector_readings_total')) > 0);
      await waitFor(`the alert of ${hot}`, () => queryFile(storePath, 'SELECT id FROM alerts WHERE vehicle = ?', hot).length === 1, 30_000);
    });

    it("a SIGKILLed detector's shards are taken over within the lease time, with nothing lost and no alert raised twice", async () => {
      await kill(detectors.get('a')!.proc, 'SIGKILL');
      const killedAt = Date.now();
      await write(stream, range(5, 8), fleet, [hot]);
      await held({ b: 4 }, LEASE_TIME_MS + TAKEOVER_MARGIN_MS + 5_000);
      const takeoverMs = Date.now() - killedAt;
      assert.ok(takeoverMs <= LEASE_TIME_MS + TAKEOVER_MARGIN_MS, `taken over after ${takeoverMs} ms`);
      console.info(`kinesis leases: takeover after SIGKILL in ${takeoverMs} ms (lease time ${LEASE_TIME_MS} ms)`);
      assert.ok((await metric('b', 'fleet_detector_kinesis_lease_takeovers_total')) >= 2);
      await allStored(8);
      // The episode went on across the takeover: still one alert, raised once.
      const alerts = queryFile<{ id: string }>(storePath, 'SELECT id FROM alerts WHERE vehicle = ?', hot);
      assert.equal(alerts.length, 1, JSON.stringify(alerts));
      const raised = queryFile(storePath, "SELECT id FROM alert_changes WHERE alert_id = ? AND kind = 'raised'", alerts[0]!.id);
      assert.equal(raised.length, 1);
      const lease = (await leasesNow()).find((l) => l.shardId === hotShard);
      assert.equal(lease?.owner, 'b');
    });

    it('a detector paused past the lease time loses its shards and, resumed, does not move their checkpoints', async () => {
      await startDetector('c');
      await held({ b: 2, c: 2 }, 60_000);
      const cShards = (await leasesNow()).filter((l) => l.owner === 'c').map((l) => l.shardId);
      const c = detectors.get('c')!.proc;
      c.child.kill('SIGSTOP');
      await write(stream, range(9, 10), fleet);
      await held({ b: 4 }, LEASE_TIME_MS + TAKEOVER_MARGIN_MS + 5_000);
      await allStored(10);
      // Stored comes just before committed: wait until b's checkpoints stand still.
      const checkpoints = async () => JSON.stringify((await leasesNow()).map((l) => [l.shardId, l.checkpoint]).sort());
      const settled = await waitFor('checkpoints that stand still', async () => {
        const first = await checkpoints();
        await sleep(1_000);
        return first === (await checkpoints()) && first;
      });
      const before = new Map(JSON.parse(settled) as [string, string][]);

      c.child.kill('SIGCONT');
      const lost = () => c.lines.filter((l) => l.includes('kinesis lease lost')).map((l) => (JSON.parse(l) as { shard: string }).shard);
      await waitFor('c to see it lost its leases', () => cShards.every((s) => lost().includes(s)), 20_000);
      // The two share the shards again; nothing new was written, so no checkpoint has a reason to move.
      await held({ b: 2, c: 2 }, 60_000);
      for (const l of await leasesNow()) assert.equal(l.checkpoint, before.get(l.shardId), l.shardId);
      // Rounds 9 and 10 came while c was stopped, on its iterators: b stored them all, and c read none of them.
      assert.equal(await metric('c', 'fleet_detector_readings_total'), 0);
      assert.equal(await metric('c', 'fleet_detector_duplicates_total'), 0);
      await write(stream, [11], fleet);
      await allStored(11);
    });
  });
});
