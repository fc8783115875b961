import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GetRecordsCommand, GetShardIteratorCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Random } from '../../simulators/random.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { decodeStreamRecord } from '../../shared/contract/stream-record.js';
import { listShards } from '../../shared/kinesis-stream.js';
import { freePort, kill, portOpen, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';

const STREAM = 'fleet.telemetry';
const BUCKET = 'fleet-archive-chaos';
const ARCHIVE = `s3://${BUCKET}/fleet`;
const TRUCKS = 200;
const PHASE1_KILLS = 20;
/** Seconds two archivers share the stream through leases, each killed now and then. */
const PHASE2_S = 40;
const REGION = 'eu-west-1';
/** No growth of the archive for this long, once the trucks stopped, fails the test as a stall. */
const STALL_MS = 60_000;
const CREDS = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: REGION };

/**
 * The acceptance test of the archive: a real gateway writes 200 simulated trucks to a Kinesis
 * stream on moto, and `fleet archiver` writes it to an S3 bucket on the same moto. First one
 * archiver is SIGKILLed 20 times at random moments (small flushes, so kills land mid-segment
 * and mid-upload); then two archivers share the stream through DynamoDB leases and are
 * killed in turn. Afterwards `fleet query` finds every (vehicle, seq) the stream carries in
 * the archive exactly once, and nothing else, and every object under the data prefix is a
 * whole Parquet file.
 */
describe('chaos: archivers SIGKILLed while archiving a Kinesis stream to S3', () => {
  const dir = tempDir('fleet-archiver-chaos-');
  const rng = new Random(20261130);
  let moto: MotoServer;
  let gatewayPort: number;
  const running = new Map<string, Proc>();
  let kills = 0;

  const env = (level = 'warn') => ({ ...CREDS, FLEET_LOG_LEVEL: level, AWS_ENDPOINT_URL: moto.endpoint });
  const aws = () => ['--aws-endpoint', moto.endpoint, '--aws-region', REGION];
  // The archivers log what they do with their lanes and leases (info), for a stall's message.
  const start = (name: string, argv: string[]) => running.set(name, runFleet(argv, env(argv[0] === 'archiver' ? 'info' : 'warn')));
  const gatewayArgs = () => [
    'gateway',
    ...['--port', String(gatewayPort), '--data-dir', join(dir, 'gateway'), '--ops-port', '-1'],
    ...['--sinks', 'kinesis', '--kinesis-stream', STREAM, '--kinesis-shards', '4', ...aws()],
  ];
  const archiverArgs = (name: string, leases: boolean) => [
    'archiver',
    ...['--source', 'kinesis', '--kinesis-stream', STREAM, ...aws()],
    ...['--to', ARCHIVE, '--data-dir', join(dir, name), '--ops-port', '-1'],
    // Small and frequent segments: kills land between intent, files, head and commit.
    ...['--flush-age-ms', '500', '--flush-bytes', '8000', '--poll-interval-ms', '100'],
    ...(leases ? ['--kinesis-leases', 'fleet-archiver-leases', '--kinesis-lease-time-ms', '3000', '--kinesis-worker-id', name] : []),
  ];
  const client = <T>(make: new (c: ReturnType<typeof awsClientConfig>) => T) =>
    new make({ ...awsClientConfig({ region: REGION, endpoint: moto.endpoint, accessKeyId: 'test', secretAccessKey: 'test' }) });

  beforeAll(async () => {
    moto = await startMoto();
    const s3 = client(S3Client);
    Object.assign(s3.config, { forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
    s3.destroy();
    gatewayPort = await freePort();
    start('gateway', gatewayArgs());
    await waitFor('the gateway', () => portOpen(gatewayPort), 30_000, 100);
    start('sim', [
      'sim',
      ...['--trucks', String(TRUCKS), '--prefix', 'trk-', '--sim-hz', '1'],
      ...['--mqtt-url', `mqtt://127.0.0.1:${gatewayPort}`, '--data-dir', join(dir, 'sim'), '--ops-port', '-1'],
    ]);
  });

  afterAll(async () => {
    for (const p of running.values()) await kill(p, 'SIGKILL');
    await moto?.stop();
  });

  /** The archivers' last log lines about lanes and leases, for a failure's message. */
  const tails = () =>
    ['a', 'b']
      .map((name) => {
        const p = running.get(name)!;
        const lines = [...p.lines.filter((l) => /lane|lease|"level":[456]0/.test(l)), ...p.stderr];
        return `${name}:\n${lines.slice(-30).join('\n')}`;
      })
      .join('\n');

  const killAndRestart = async (name: string, leases: boolean) => {
    await kill(running.get(name)!, 'SIGKILL');
    kills++;
    start(name, archiverArgs(name, leases));
  };

  it('refuses to start on a bucket that is not there, naming it', async () => {
    const p = runFleet([...archiverArgs('nowhere', false).map((a) => (a === ARCHIVE ? 's3://no-such-bucket/fleet' : a))], env());
    assert.equal(await p.exited, 2);
    assert.match(p.stderr.join('\n'), /--to s3:\/\/no-such-bucket\/fleet: NoSuchBucket/);
  });

  it('archives every reading the stream carries exactly once through 20 kills of one archiver and kills of two sharing the stream', async () => {
    // Phase 1: one archiver, killed at random moments, restarted at once.
    start('solo', archiverArgs('solo', false));
    for (let i = 0; i < PHASE1_KILLS; i++) {
      await sleep(700 + rng.next() * 1800);
      await killAndRestart('solo', false);
      process.stderr.write(`# archiver kill ${i + 1}/${PHASE1_KILLS}\n`);
      if (i === PHASE1_KILLS / 2) {
        // Batches the stream took whose PUBACK the gateway's death lost are sent again: repeats in the stream.
        await kill(running.get('gateway')!, 'SIGKILL');
        start('gateway', gatewayArgs());
        await waitFor('the gateway back', () => portOpen(gatewayPort), 30_000, 100);
      }
    }
    await kill(running.get('solo')!, 'SIGKILL');
    running.delete('solo');
    kills++;

    // Phase 2: two archivers share the shards through leases; one or the other is killed now and then.
    start('a', archiverArgs('a', true));
    start('b', archiverArgs('b', true));
    const phase2Ends = Date.now() + PHASE2_S * 1000;
    while (Date.now() < phase2Ends - 8000) {
      await sleep(2500 + rng.next() * 3000);
      const name = rng.next() < 0.5 ? 'a' : 'b';
      await killAndRestart(name, true);
      process.stderr.write(`# archiver kill: ${name}\n`);
    }
    await sleep(Math.max(0, phase2Ends - Date.now()));

    // The trucks stop and drain; the archivers catch up and write what they staged.
    await kill(running.get('sim')!, 'SIGTERM');
    running.delete('sim');
    await sleep(2000);
    const { produced, carried } = await readStream();
    const expected = produced.size;
    // However loaded the machine, the archive grows until it holds them all; a wait with no growth is a stall.
    let archivedSoFar = 0;
    let grewAt = Date.now();
    await waitFor(
      `all ${expected} readings archived`,
      async () => {
        const n = Number((await query<{ n: number }>('SELECT count(*) AS n FROM (SELECT DISTINCT vehicle, seq FROM readings)'))[0]!.n);
        if (n > archivedSoFar) [archivedSoFar, grewAt] = [n, Date.now()];
        if (Date.now() - grewAt > STALL_MS) throw new Error(`archiving stalled at ${n} of ${expected} readings:\n${tails()}`);
        return n >= expected;
      },
      300_000,
      3000,
    );
    for (const name of ['a', 'b']) {
      await kill(running.get(name)!, 'SIGTERM');
      running.delete(name);
    }

    const rows = await query<{ vehicle: string; seq: number; n: number }>(
      'SELECT vehicle, seq, count(*) AS n FROM readings GROUP BY vehicle, seq',
    );
    const archived = new Map(rows.map((r) => [`${r.vehicle}:${r.seq}`, Number(r.n)]));
    const missing = [...produced].filter((k) => !archived.has(k));
    const extra = [...archived.keys()].filter((k) => !produced.has(k));
    const repeated = [...archived].filter(([, n]) => n !== 1);
    const files = await objects('fleet/dt=');
    const segments = (await objects('fleet/_fleet_archive/')).filter((k) => k.includes('/segments/'));
    const summary = {
      produced: expected,
      archived: archived.size,
      duplicatesDropped: carried - expected,
      missing: missing.length,
      extra: extra.length,
      repeated: repeated.length,
      files: files.length,
      segments: segments.length,
      kills,
    };
    console.log(`# ${JSON.stringify(summary)}`);
    assert.deepEqual(missing.slice(0, 10), [], `${missing.length} produced readings missing`);
    assert.deepEqual(extra.slice(0, 10), [], `${extra.length} archived readings the stream does not carry`);
    assert.deepEqual(repeated.slice(0, 10), [], `${repeated.length} readings archived more than once`);
    assert.ok(kills >= PHASE1_KILLS + 3);
    // Every object under the data prefix is a whole Parquet file: it ends with the format's magic.
    const s3 = client(S3Client);
    Object.assign(s3.config, { forcePathStyle: true });
    for (const key of files) {
      const tail = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: 'bytes=-4' }));
      assert.equal(await tail.Body!.transformToString(), 'PAR1', `${key} is not a whole Parquet file`);
    }
    s3.destroy();
  });

  /** `fleet query` over the bucket, as a user runs it. */
  async function query<T>(sql: string): Promise<T[]> {
    const p = runFleet(['query', sql, '--archive', ARCHIVE, '--cache', join(dir, 'query-cache'), '--format', 'json'], env());
    const code = await p.exited;
    assert.equal(code, 0, `fleet query failed: ${p.stderr.join('\n')}`);
    return p.lines.filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as T);
  }

  /** Every (vehicle, seq) the stream carries, read from each shard's start, and how many readings it carries with repeats. */
  async function readStream(): Promise<{ produced: Set<string>; carried: number }> {
    const kinesis = client(KinesisClient);
    const seen = new Set<string>();
    let carried = 0;
    for (const shard of await listShards(kinesis, STREAM)) {
      const first = await kinesis.send(
        new GetShardIteratorCommand({ StreamName: STREAM, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }),
      );
      let iterator = first.ShardIterator;
      while (iterator) {
        const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
        for (const r of out.Records ?? []) {
          const rec = decodeStreamRecord(r.Data!, { key: r.PartitionKey!, receivedAt: 0 });
          for (const x of rec.batch.readings) seen.add(`${x.vehicle}:${x.seq}`);
          carried += rec.batch.readings.length;
        }
        if ((out.Records ?? []).length === 0 && (out.MillisBehindLatest ?? 0) === 0) break;
        iterator = out.NextShardIterator;
      }
    }
    kinesis.destroy();
    return { produced: seen, carried };
  }

  async function objects(prefix: string): Promise<string[]> {
    const s3 = client(S3Client);
    Object.assign(s3.config, { forcePathStyle: true });
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const out = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
      keys.push(...(out.Contents ?? []).map((o) => o.Key!));
      token = out.NextContinuationToken;
    } while (token);
    s3.destroy();
    return keys;
  }
});
