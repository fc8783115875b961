import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { DuckDBConnection } from '@duckdb/node-api';
import { runQuery } from '../../../cloud/archive/archive-query.js';
import { duckdb } from '../../../cloud/archive/duckdb.js';
import { formatResult, type QueryFormat } from '../../../cloud/archive/query-output.js';

let db: DuckDBConnection;
beforeAll(async () => {
  db = await (await duckdb()).connect();
});
afterAll(() => db.closeSync());

async function output(sql: string, format: QueryFormat): Promise<string> {
  let out = '';
  for await (const line of formatResult(await runQuery(db, sql), format)) out += line;
  return out;
}

const TRICKY = `SELECT * FROM (VALUES
  (1, 9007199254740993::BIGINT, 12.345::DECIMAL(10, 3), 1234567890.123456789::DECIMAL(38, 9), TIMESTAMPTZ '2026-01-05 10:00:00.123+00', 'plain'),
  (22, NULL, NULL, NULL, TIMESTAMPTZ '2026-01-05 11:00:00+00', 'a, "b"\nc')
) AS t(n, big, dec, wide, ts, note)`;

describe('query output', () => {
  it('aligns a table, numbers to the right and NULL shown', async () => {
    assert.equal(
      await output(`SELECT n, big, ts FROM (${TRICKY})`, 'table'),
      [
        ' n               big  ts',
        '--  ----------------  --------------------------',
        ' 1  9007199254740993  2026-01-05 10:00:00.123+00',
        '22              NULL  2026-01-05 11:00:00+00',
        '',
      ].join('\n'),
    );
  });

  it('writes RFC 4180 CSV: CRLF, quotes doubled, fields with commas, quotes or line breaks quoted, NULL empty', async () => {
    assert.equal(
      await output(`SELECT n, big, note FROM (${TRICKY})`, 'csv'),
      'n,big,note\r\n1,9007199254740993,plain\r\n22,,"a, ""b""\nc"\r\n',
    );
  });

  it('writes one JSON object a line, numbers where a double holds them, ISO timestamps', async () => {
    const rows = (await output(TRICKY, 'json'))
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line));
    assert.deepEqual(rows, [
      { n: 1, big: '9007199254740993', dec: 12.345, wide: '1234567890.123456789', ts: '2026-01-05T10:00:00.123Z', note: 'plain' },
      { n: 22, big: null, dec: null, wide: null, ts: '2026-01-05T11:00:00Z', note: 'a, "b"\nc' },
    ]);
  });

  it('prints the last of several statements, and refuses bad SQL with DuckDB message', async () => {
    assert.equal(await output('CREATE TEMPORARY TABLE x AS SELECT 41 AS a; SELECT a + 1 AS b FROM x', 'csv'), 'b\r\n42\r\n');
    await assert.rejects(runQuery(db, 'SELEC 1'), /^Error: Parser Error: syntax error at or near "SELEC"/);
    await assert.rejects(runQuery(db, '  '), /no SQL statement to run/);
  });

  it('runs task by task when progress is asked for: the same rows, progress in range', async () => {
    const sql = 'SELECT count(*) AS n FROM range(3000000) r, range(2) s WHERE r.range % 7 = s.range';
    const seen: number[] = [];
    // A connection streams one result at a time: each is read before the next query.
    const watched = await (await runQuery(db, sql, (p) => seen.push(p.percentage))).getRowObjectsJS();
    const plain = await (await runQuery(db, sql)).getRowObjectsJS();
    assert.deepEqual(watched, plain);
    assert.ok(seen.every((p) => p === -1 || (p >= 0 && p <= 100)));
  });
});
