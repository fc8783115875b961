import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FileArchiveStore } from '../../cloud/archive/file-archive-store.js';
import type { ArchiveStore } from '../../cloud/archive/object-store.js';
import { openArchiveStore } from '../../cloud/archive/open-archive-store.js';
import { ParquetStaging } from '../../cloud/archive/parquet-file.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { archivedReadings } from '../support/archive-readings.js';
import { runFleet, tempDir } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';
import { ROOT } from '../support/paths.js';

const REGION = 'eu-west-1';
const BUCKET = 'fleet-archive';
const PYTHON = join(ROOT, '.cache/moto-venv/bin/python');
const HOUR = 3_600_000;
const JAN_5 = Date.UTC(2026, 0, 5);

let moto: MotoServer;
let s3Env: NodeJS.ProcessEnv;
let staging: ParquetStaging;
const work = tempDir('archive-query-');
const dirUrl = `file://${join(work, 'archive')}`;
const s3Url = `s3://${BUCKET}/fleet`;

/** Three hours of one day and one hour of the next, three trucks, a file per hour. */
const HOURS = [JAN_5 + 9 * HOUR, JAN_5 + 10 * HOUR, JAN_5 + 11 * HOUR, JAN_5 + 24 * HOUR];

async function writeArchive(store: ArchiveStore): Promise<void> {
  for (const [i, start] of HOURS.entries()) {
    for (const { reading, receivedAt } of archivedReadings(120, start)) staging.append(reading, receivedAt);
    const file = join(work, `hour-${i}.parquet`);
    await staging.write(file);
    const at = new Date(start).toISOString();
    await store.putFile(`dt=${at.slice(0, 10)}/hour=${at.slice(11, 13)}/part-0-${i * 120}-${i * 120 + 119}.parquet`, file);
  }
  // Bookkeeping beside the data files, which no query may see.
  await store.put('_fleet_archive/lane-0.json', Buffer.from('{"not":"parquet"}'));
}

beforeAll(async () => {
  moto = await startMoto();
  s3Env = { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_REGION: REGION, AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' };
  Object.assign(process.env, s3Env);
  const s3 = new S3Client({ ...awsClientConfig({ region: REGION, endpoint: moto.endpoint }), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET, CreateBucketConfiguration: { LocationConstraint: REGION } }));
  s3.destroy();
  staging = await ParquetStaging.create();
  await writeArchive(new FileArchiveStore(join(work, 'archive')));
  await writeArchive(openArchiveStore(s3Url));
});
afterAll(async () => {
  staging?.close();
  await moto?.stop();
});

describe('the archive read by pyarrow', () => {
  it('has the documented schema and the values written, after a round trip through the bucket', async () => {
    const readings = archivedReadings(8, JAN_5);
    for (const { reading, receivedAt } of readings) staging.append(reading, receivedAt);
    await staging.write(join(work, 'pyarrow.parquet'));
    const store = openArchiveStore(s3Url);
    await store.putFile('dt=2026-01-04/hour=00/part-9-0-7.parquet', join(work, 'pyarrow.parquet'));
    await store.download('dt=2026-01-04/hour=00/part-9-0-7.parquet', join(work, 'downloaded.parquet'));
    await store.delete('dt=2026-01-04/hour=00/part-9-0-7.parquet');

    const script = `
import json, sys, pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
rows = t.to_pylist()
for r in rows:
    for k in ('ts', 'received_at'):
        r[k] = r[k].isoformat()
print(json.dumps({'schema': [[f.name, str(f.type)] for f in t.schema], 'rows': rows}))`;
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', script, join(work, 'downloaded.parquet')]);
    const { schema, rows } = JSON.parse(stdout);
    assert.deepEqual(schema, [
      ['vehicle', 'string'],
      ['seq', 'int64'],
      ['ts', 'timestamp[us, tz=UTC]'],
      ['sensor', 'string'],
      ['value', 'double'],
      ['quality', 'string'],
      ['clock', 'string'],
      ['lat', 'double'],
      ['lon', 'double'],
      ['heading', 'double'],
      ['fix', 'string'],
      ['received_at', 'timestamp[us, tz=UTC]'],
    ]);
    assert.deepEqual(
      rows,
      readings.map(({ reading: r, receivedAt }) => ({
        vehicle: r.vehicle,
        seq: r.seq,
        ts: new Date(r.ts).toISOString().replace('.000Z', '+00:00'),
        sensor: r.sensor,
        value: r.value,
        quality: r.quality,
        clock: r.clock,
        lat: r.position?.lat ?? null,
        lon: r.position?.lon ?? null,
        heading: r.position?.heading ?? null,
        fix: r.position?.fix ?? null,
        received_at: new Date(receivedAt).toISOString().replace('Z', '000+00:00'),
      })),
    );
  });
});

const HOURLY_MAX = `SELECT date_trunc('hour', ts) AS hour, max(value) AS max_cargo_temp, count(*) AS readings
  FROM readings WHERE vehicle = 'truck-001' AND sensor = 'container_temp' GROUP BY 1 ORDER BY 1`;

async function query(archive: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const p = runFleet(['query', '--archive', archive, '--cache', join(work, 'cache'), ...args], env);
  const code = await p.exited;
  return { code, out: p.lines, err: p.stderr.join('\n') };
}

describe('fleet query', () => {
  for (const [where, url] of [
    ['a directory', () => dirUrl],
    ['a bucket', () => s3Url],
  ] as const) {
    it(`prints the hourly maximum cargo temperature from ${where} as a table, CSV and JSON`, async () => {
      // Independent runs, side by side.
      const [table, csv, json] = await Promise.all([
        query(url(), [HOURLY_MAX]),
        query(url(), [
          '--format',
          'csv',
          `SELECT vehicle, seq, ts, 'a "quoted", value' AS note FROM readings ORDER BY ts, vehicle LIMIT 2`,
        ]),
        query(url(), ['--format', 'json', `${HOURLY_MAX} LIMIT 1`]),
      ]);
      assert.equal(table.code, 0, table.err);
      assert.deepEqual(table.out, [
        'hour                    max_cargo_temp  readings',
        '----------------------  --------------  --------',
        '2026-01-05 09:00:00+00             4.9        10',
        '2026-01-05 10:00:00+00             4.9        10',
        '2026-01-05 11:00:00+00             4.9        10',
        '2026-01-06 00:00:00+00             4.9        10',
      ]);
      assert.equal(csv.code, 0, csv.err);
      assert.deepEqual(csv.out, [
        'vehicle,seq,ts,note\r',
        'truck-000,1000000000000,2026-01-05 09:00:00+00,"a ""quoted"", value"\r',
        'truck-001,1000000000001,2026-01-05 09:00:00+00,"a ""quoted"", value"\r',
      ]);
      assert.equal(json.code, 0, json.err);
      assert.deepEqual(
        json.out.map((line) => JSON.parse(line)),
        [{ hour: '2026-01-05T09:00:00Z', max_cargo_temp: 4.9, readings: 10 }],
      );
    });
  }

  it('counts every row of every partition, and --from/--to limit the days (with progress asked for)', async () => {
    const [all, one] = await Promise.all([
      query(dirUrl, [
        '--progress',
        '--format',
        'json',
        'SELECT count(*) AS n, count(DISTINCT dt) AS days, max(hour) AS last_hour FROM readings',
      ]),
      query(dirUrl, ['--format', 'json', '--from', '2026-01-06', '--to', '2026-01-06', 'SELECT count(*) AS n FROM readings']),
    ]);
    assert.deepEqual(JSON.parse(all.out[0]!), { n: 480, days: 2, last_hour: 11 });
    assert.deepEqual(JSON.parse(one.out[0]!), { n: 120 });
  });

  it('fetches from the bucket only the days asked for, only once, and forgets deleted objects', async () => {
    const cache = join(tempDir('archive-cache-'));
    const run = (args: string[]) => query(s3Url, ['--cache', cache, '--format', 'json', ...args, 'SELECT count(*) AS n FROM readings']);
    const day6 = await run(['--from', '2026-01-06']);
    assert.deepEqual(JSON.parse(day6.out[0]!), { n: 120 });
    assert.match(day6.err, /fetched 1 of 1 objects .*, 0 already cached/);
    const all = await run([]);
    assert.deepEqual(JSON.parse(all.out[0]!), { n: 480 });
    assert.match(all.err, /fetched 3 of 3 objects .*, 1 already cached/);
    await openArchiveStore(s3Url).delete('dt=2026-01-05/hour=09/part-0-0-119.parquet');
    const after = await run([]);
    assert.deepEqual(JSON.parse(after.out[0]!), { n: 360 });
    assert.match(after.err, /fetched 0 of 0 objects .*, 3 already cached/);
  });

  it('says so when the archive has no files yet, and gives an empty view', async () => {
    const empty = await query(`file://${join(work, 'nothing-yet')}`, ['SELECT count(*) AS n FROM readings']);
    assert.equal(empty.code, 0, empty.err);
    assert.match(empty.err, /no archive files under .* yet: readings is empty/);
    assert.deepEqual(empty.out, ['n', '-', '0']);
  });

  it("exits 1 with DuckDB's message on bad SQL or the store's on a missing bucket, and 2 on bad flags", async () => {
    const [bad, missing, noBucket, ...badFlags] = await Promise.all([
      query(dirUrl, ['SELEC 1']),
      query(dirUrl, ['SELECT nope FROM readings']),
      query('s3://no-such-bucket/fleet', ['SELECT 1']),
      query(dirUrl, ['--from', '2026-13-01', 'SELECT 1']),
      query(dirUrl, ['--from', '2026-01-06', '--to', '2026-01-05', 'SELECT 1']),
      query(dirUrl, ['--format', 'xml', 'SELECT 1']),
      query('https://example.com/archive', ['SELECT 1']),
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^fleet query: Parser Error: syntax error at or near "SELEC"/);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /Binder Error: Referenced column "nope" not found/);
    assert.equal(noBucket.code, 1);
    assert.match(noBucket.err, /^fleet query: reading s3:\/\/no-such-bucket\/fleet: The specified bucket does not exist/);
    const messages = [
      /flag --from: from: no such day/,
      /flag --from: from: must not be after --to/,
      /flag --format: format: /,
      /flag --archive: archive: archive URL "https:\/\/example.com\/archive" has the scheme https:/,
    ];
    badFlags.forEach((p, i) => {
      assert.equal(p.code, 2, p.err);
      assert.match(p.err, messages[i]!);
    });
  });
});
