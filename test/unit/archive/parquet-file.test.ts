import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { DuckDBConnection } from '@duckdb/node-api';
import { ARCHIVE_COLUMNS } from '../../../cloud/archive/archive-row.js';
import { duckdb } from '../../../cloud/archive/duckdb.js';
import { ParquetStaging, sqlString } from '../../../cloud/archive/parquet-file.js';
import { archivedReadings, type ArchivedReading } from '../../support/archive-readings.js';
import { tempDir } from '../../support/harness.js';

let db: DuckDBConnection;
let staging: ParquetStaging;
const dir = tempDir('parquet-');

beforeAll(async () => {
  db = await (await duckdb()).connect();
  staging = await ParquetStaging.create();
});
afterAll(() => {
  staging.close();
  db.closeSync();
});

async function write(name: string, readings: ArchivedReading[], opts = {}): Promise<string> {
  for (const { reading, receivedAt } of readings) staging.append(reading, receivedAt);
  const path = join(dir, name);
  await staging.write(path, opts);
  return path;
}

const query = async (sql: string) => (await db.runAndReadAll(sql)).getRowObjectsJS();

describe('ParquetStaging', () => {
  it('writes the archive columns with their types, timestamps as UTC instants', async () => {
    const path = await write('schema.parquet', archivedReadings(8));
    const schema = await query(`SELECT name, type, logical_type FROM parquet_schema(${sqlString(path)}) WHERE name <> 'duckdb_schema'`);
    assert.deepEqual(
      schema.map((c) => c.name),
      ARCHIVE_COLUMNS.map(([name]) => name),
    );
    const described = await query(`DESCRIBE SELECT * FROM read_parquet(${sqlString(path)})`);
    assert.deepEqual(
      described.map((c) => [c.column_name, c.column_type]),
      ARCHIVE_COLUMNS.map(([name, type]) => [name, type === 'TIMESTAMPTZ' ? 'TIMESTAMP WITH TIME ZONE' : type]),
    );
    const ts = schema.find((c) => c.name === 'ts');
    assert.match(ts?.logical_type as string, /isAdjustedToUTC=1/);
  });

  it('keeps every value and the order the readings came in, across many data chunks', async () => {
    const readings = archivedReadings(5000);
    const path = await write('values.parquet', readings);
    const rows = await query(
      `SELECT vehicle, seq, epoch_ms(ts) AS ts, sensor, value, quality, clock, lat, lon, heading, fix, epoch_ms(received_at) AS received_at FROM read_parquet(${sqlString(path)})`,
    );
    assert.equal(rows.length, readings.length);
    rows.forEach((row, i) => {
      const { reading: r, receivedAt } = readings[i]!;
      assert.deepEqual(row, {
        vehicle: r.vehicle,
        seq: BigInt(r.seq),
        ts: BigInt(r.ts),
        sensor: r.sensor,
        value: r.value,
        quality: r.quality,
        clock: r.clock,
        lat: r.position?.lat ?? null,
        lon: r.position?.lon ?? null,
        heading: r.position?.heading ?? null,
        fix: r.position?.fix ?? null,
        received_at: BigInt(receivedAt),
      });
    });
  });

  it('gives the same bytes for the same readings, and starts empty after each write', async () => {
    const readings = archivedReadings(3000);
    const a = await write('a.parquet', readings);
    const b = await write('b.parquet', readings);
    const digest = async (p: string) =>
      createHash('sha256')
        .update(await readFile(p))
        .digest('hex');
    assert.equal(await digest(a), await digest(b));
    assert.equal(staging.rows, 0);
    assert.deepEqual(await query(`SELECT count(*) AS n FROM read_parquet(${sqlString(b)})`), [{ n: 3000n }]);
  });

  it('uses the compression and row group size it is given', async () => {
    const path = await write('snappy.parquet', archivedReadings(5000), { compression: 'snappy', rowGroupRows: 2048 });
    const meta = await query(`SELECT DISTINCT row_group_id, compression FROM parquet_metadata(${sqlString(path)}) ORDER BY 1`);
    assert.deepEqual(
      meta.map((m) => [m.row_group_id, m.compression]),
      [
        [0n, 'SNAPPY'],
        [1n, 'SNAPPY'],
        [2n, 'SNAPPY'],
      ],
    );
    const zstd = await write('zstd.parquet', archivedReadings(10));
    assert.deepEqual(await query(`SELECT DISTINCT compression FROM parquet_metadata(${sqlString(zstd)})`), [{ compression: 'ZSTD' }]);
  });

  it('refuses a row group size that is not a positive integer', async () => {
    await assert.rejects(write('bad.parquet', [], { rowGroupRows: 0 }), /rowGroupRows must be a positive integer/);
  });
});
