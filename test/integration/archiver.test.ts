import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { duckdb } from '../../cloud/archive/duckdb.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import { sqlString } from '../../cloud/archive/parquet-file.js';
import type { Batch } from '../../shared/contract/batch.js';
import type { Reading } from '../../shared/contract/reading.js';
import { encodeStreamRecord } from '../../shared/contract/stream-record.js';
import { kafkaClient } from '../../shared/kafka.js';
import { createLogger } from '../../shared/log.js';
import { StreamLog } from '../../shared/stream-log.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';

const T = Date.UTC(2026, 10, 30, 7, 50);
const VEHICLES = ['trk-1', 'trk-2', 'trk-3', 'trk-4', 'trk-5'];

/**
 * Batches of five readings per truck, a minute apart per batch so they span hours; every
 * sixth batch is sent again right after (a PUBACK lost), and one truck's old batch comes late.
 */
function traffic(batchesPerTruck: number): { vehicle: string; receivedAt: number; batch: Batch }[] {
  const out: { vehicle: string; receivedAt: number; batch: Batch }[] = [];
  for (let b = 0; b < batchesPerTruck; b++) {
    for (const vehicle of VEHICLES) {
      const readings: Reading[] = Array.from({ length: 5 }, (_, i) => ({
        vehicle,
        seq: b * 5 + i + 1,
        ts: T + b * 60_000 + i * 1000,
        clock: 'synced',
        sensor: i % 2 ? 'speed' : 'engine_temp',
        value: 80 + i,
        quality: 'good',
      }));
      const rec = { vehicle, receivedAt: T + b * 60_000 + 5000, batch: { vehicle, headTs: readings[4]!.ts, readings } };
      out.push(rec);
      if (out.length % 6 === 0) out.push({ ...rec, receivedAt: rec.receivedAt + 300 });
    }
  }
  return out;
}

const distinct = (records: ReturnType<typeof traffic>) =>
  new Set(records.flatMap((r) => r.batch.readings.map((x) => `${x.vehicle}:${x.seq}`)));

/** Every (vehicle, seq) in the archive's Parquet files, with how often. */
async function archived(dir: string): Promise<Map<string, number>> {
  const db = await (await duckdb()).connect();
  try {
    const rows = (
      await db.runAndReadAll(
        `SELECT vehicle, seq, count(*) AS n FROM read_parquet(${sqlString(`${dir}/dt=*/hour=*/*.parquet`)}) GROUP BY ALL`,
      )
    ).getRowObjectsJS();
    return new Map(rows.map((r) => [`${r.vehicle as string}:${Number(r.seq)}`, Number(r.n)]));
  } finally {
    db.closeSync();
  }
}

async function assertExactlyOnce(dir: string, records: ReturnType<typeof traffic>): Promise<void> {
  const counts = await archived(dir);
  assert.deepEqual(new Set(counts.keys()), distinct(records));
  assert.deepEqual(
    [...counts].filter(([, n]) => n !== 1),
    [],
  );
}

/** A one-shot archiver of the embedded log in `dir` into the archive directory. */
const backfillArgs = (dir: string, archive: string) => [
  'archiver',
  '--backfill',
  ...['--stream-path', join(dir, 'stream.db'), '--data-dir', dir, '--to', pathToFileURL(archive).href],
];

describe('fleet archiver', () => {
  it('archives the embedded log from its start with --backfill, once, and a second run writes nothing new', async () => {
    const dir = tempDir('archiver-embedded-');
    const records = traffic(30);
    const log = new StreamLog(join(dir, 'stream.db'));
    log.append(records.map((r) => ({ key: r.vehicle, value: encodeStreamRecord(r), receivedAt: r.receivedAt })));
    log.close();
    const archive = join(dir, 'archive');
    const args = backfillArgs(dir, archive);
    const first = runFleet([...args, '--flush-bytes', '2048']);
    assert.equal(await first.exited, 0, first.stderr.join('\n'));
    const repeats = (records.length - 150) * 5;
    assert.match(first.stderr.join('\n'), new RegExp(`archived 750 readings in ([3-9]|\\d\\d+) segments \\(${repeats} repeats dropped`));
    await assertExactlyOnce(archive, records);
    // The hours the traffic spans, by event time.
    const hours = (await archived(archive)).size > 0 ? await hourDirs(archive) : [];
    assert.deepEqual(hours, ['dt=2026-11-30/hour=07', 'dt=2026-11-30/hour=08']);

    const again = runFleet([...args, '--consumer-group', 'another']);
    assert.equal(await again.exited, 0, again.stderr.join('\n'));
    assert.match(again.stderr.join('\n'), new RegExp(`archived 0 readings in 0 segments .* ${records.length} records already archived`));
  });

  it('backfills from the operational store what the stream archive lacks, once, and a second run rewrites the same files', async () => {
    const dir = tempDir('archiver-store-');
    const trucks = ['trk-1', 'trk-2'];
    const reading = (vehicle: string, seq: number): Reading => ({
      vehicle,
      seq,
      ts: T + seq * 60_000,
      clock: 'synced',
      sensor: 'engine_temp',
      value: seq,
      quality: 'good',
    });
    const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
    // The stream (its retention kept only the last part): seqs 41 to 60 of each truck, received from T + 1 h.
    const log = new StreamLog(join(dir, 'stream.db'));
    log.append(
      trucks.map((vehicle) => {
        const readings = seqs(41, 60).map((seq) => reading(vehicle, seq));
        const receivedAt = T + 3_600_000;
        return {
          key: vehicle,
          value: encodeStreamRecord({ vehicle, receivedAt, batch: { vehicle, headTs: readings.at(-1)!.ts, readings } }),
          receivedAt,
        };
      }),
    );
    log.close();
    // The store has all of them, a truck the stream archive never saw (before the cutover), and one after it.
    const store = new SqliteStore(join(dir, 'fleet.db'));
    await store.open();
    const received = [
      ...trucks.map((v) => ({ readings: seqs(1, 60).map((seq) => reading(v, seq)), receivedAt: T })),
      { readings: seqs(1, 30).map((seq) => reading('trk-old', seq)), receivedAt: T },
      { readings: seqs(1, 5).map((seq) => reading('trk-new', seq)), receivedAt: T + 7_200_000 },
    ];
    await store.write({ received, duplicates: 0, events: [], at: T });
    await store.close();
    const archive = join(dir, 'archive');
    const args = backfillArgs(dir, archive);

    const first = runFleet([...args, '--store', join(dir, 'fleet.db')]);
    // No stream archive yet: the stream goes first (the same run), then the store.
    assert.equal(await first.exited, 0, first.stderr.join('\n'));
    assert.match(first.stderr.join('\n'), /archived 110 readings of the store's 155 in \d+ files/);
    const counts = await archived(archive);
    const want = [...trucks.flatMap((v) => seqs(1, 60).map((s) => `${v}:${s}`)), ...seqs(1, 30).map((s) => `trk-old:${s}`)];
    assert.deepEqual(new Set(counts.keys()), new Set(want));
    assert.deepEqual(
      [...counts].filter(([, n]) => n !== 1),
      [],
    );
    const files = await hourFiles(archive);
    assert.ok(
      files.some((f) => /^dt=2026-11-30\/hour=07\/backfill-trk-1:1-trk-old:9\.parquet$/.test(f)),
      files.join(' '),
    );

    const again = runFleet([...args, '--store', join(dir, 'fleet.db')]);
    assert.equal(await again.exited, 0, again.stderr.join('\n'));
    assert.deepEqual(await hourFiles(archive), files);
    assert.deepEqual(await archived(archive), counts);
  });

  it('answers health and metrics while it runs and writes what it staged when stopped', async () => {
    const dir = tempDir('archiver-ops-');
    const records = traffic(4);
    const log = new StreamLog(join(dir, 'stream.db'));
    log.append(records.map((r) => ({ key: r.vehicle, value: encodeStreamRecord(r), receivedAt: r.receivedAt })));
    log.close();
    const archive = join(dir, 'archive');
    const port = await freePort();
    const p = runFleet([
      'archiver',
      ...['--stream-path', join(dir, 'stream.db'), '--data-dir', dir, '--to', pathToFileURL(archive).href],
      ...['--ops-port', String(port), '--poll-interval-ms', '20'],
    ]);
    try {
      const metrics = await waitFor('the log staged', async () => {
        const m = await (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.text();
        return m !== undefined && /fleet_archiver_staged_bytes\{component="archiver"\} [1-9]/.test(m) && m;
      });
      const health = await getJson<{ ok: boolean; lanes: number; archive: string }>(`http://127.0.0.1:${port}/healthz`);
      assert.equal(health.status, 200);
      assert.deepEqual([health.body.ok, health.body.lanes, health.body.archive], [true, 1, pathToFileURL(archive).href]);
      assert.match(metrics, new RegExp(`fleet_archiver_records_behind\\{lane="log",component="archiver"\\} ${records.length}\\n`));
    } finally {
      await kill(p, 'SIGTERM');
    }
    assert.equal(await p.exited, 0);
    await assertExactlyOnce(archive, records);
  });

  describe('from Kafka', () => {
    let kafka: KafkaBroker;
    beforeAll(async () => {
      kafka = await startKafka({ partitionsDefault: 3 });
    });
    afterAll(async () => {
      await kafka?.stop();
    });

    it('archives every partition once, each in segments of its own, with the lag behind it', async () => {
      const dir = tempDir('archiver-kafka-');
      const records = traffic(20);
      const client = kafkaClient([kafka.bootstrap], 'archiver-test', createLogger('test', { level: 'silent' }));
      const admin = client.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: 'fleet.telemetry', numPartitions: 3 }], waitForLeaders: true });
      await admin.disconnect();
      const producer = client.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      await producer.send({ topic: 'fleet.telemetry', messages: records.map((r) => ({ key: r.vehicle, value: encodeStreamRecord(r) })) });
      await producer.disconnect();
      const archive = join(dir, 'archive');
      const port = await freePort();
      const p = runFleet([
        'archiver',
        ...['--source', 'kafka', '--kafka-brokers', kafka.bootstrap, '--data-dir', dir, '--to', pathToFileURL(archive).href],
        ...['--flush-age-ms', '500', '--ops-port', String(port), '--poll-interval-ms', '50'],
      ]);
      try {
        await waitFor(
          'every partition archived and committed',
          async () => {
            const m = await (await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined))?.text();
            const behind = [...(m ?? '').matchAll(/fleet_archiver_records_behind\{lane="(\d)".*\} (\d+)/g)];
            return behind.length === 3 && behind.every(([, , n]) => n === '0');
          },
          60_000,
          500,
        );
        const m = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        assert.match(m, /fleet_archiver_lag_seconds\{lane="0",component="archiver"\} \d+/);
      } finally {
        await kill(p, 'SIGTERM');
      }
      await assertExactlyOnce(archive, records);
      const files = await hourFiles(archive);
      assert.deepEqual(new Set(files.map((f) => /part-(\d)-/.exec(f)![1])), new Set(['0', '1', '2']));

      // A one-shot run of a new consumer group reads the topic from its start, and ends once every partition is committed.
      const again = join(dir, 'again');
      const backfill = runFleet([
        'archiver',
        '--backfill',
        ...['--source', 'kafka', '--kafka-brokers', kafka.bootstrap, '--consumer-group', 'backfill', '--data-dir', dir],
        ...['--to', pathToFileURL(again).href],
      ]);
      assert.equal(await backfill.exited, 0, backfill.stderr.join('\n'));
      await assertExactlyOnce(again, records);
    });
  });

  it('refuses bad settings with a message naming the flag', async () => {
    const empty = tempDir('archiver-empty-');
    const cases: [string[], RegExp][] = [
      [['--to', 'ftp://host/dir'], /--to: archive URL "ftp:\/\/host\/dir" has the scheme ftp:/],
      [['--to', 's3://No_Such_Bucket/x'], /--to: archive URL .* has no valid bucket name/],
      [['--flush-bytes', '10'], /flag --flush-bytes: flushBytes: .*1024/],
      [['--source', 'kafka'], /kafkaBrokers: the kafka source needs kafkaBrokers/],
      [['--backfill', 'maybe'], /flag --backfill/],
      [['--partition-by', 'tuesday'], /flag --partition-by/],
      [['--store', 'fleet.db'], /store: is read only with --backfill/],
      [
        [
          '--backfill',
          '--stream-path',
          join(empty, 'stream.db'),
          '--store',
          join(empty, 'fleet.db'),
          '--to',
          pathToFileURL(join(empty, 'a')).href,
        ],
        /holds no archive of the stream embedded yet: run fleet archiver on the stream first/,
      ],
    ];
    await Promise.all(
      cases.map(async ([flags, message]) => {
        const p = runFleet(['archiver', '--ops-port', '-1', '--data-dir', tempDir(), ...flags]);
        assert.equal(await p.exited, 2, flags.join(' '));
        assert.match(p.stderr.join('\n'), message);
      }),
    );
  });
});

async function hourFiles(archive: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return (await readdir(archive, { recursive: true })).filter((f) => f.endsWith('.parquet'));
}

async function hourDirs(archive: string): Promise<string[]> {
  return [...new Set((await hourFiles(archive)).map((f) => f.split('/').slice(0, 2).join('/')))].sort();
}
