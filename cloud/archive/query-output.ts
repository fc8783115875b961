import { DuckDBTypeId, JsonDuckDBValueConverter, type DuckDBResult, type DuckDBValue, type Json } from '@duckdb/node-api';

export const QUERY_FORMATS = ['table', 'csv', 'json'] as const;
export type QueryFormat = (typeof QUERY_FORMATS)[number];

/** Integers JSON's converter gives as strings (they may exceed 2^53): numbers again where exact. */
const WIDE_INTEGERS = new Set([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);
const NUMERIC = new Set([
  ...WIDE_INTEGERS,
  DuckDBTypeId.TINYINT,
  DuckDBTypeId.SMALLINT,
  DuckDBTypeId.INTEGER,
  DuckDBTypeId.UTINYINT,
  DuckDBTypeId.USMALLINT,
  DuckDBTypeId.UINTEGER,
  DuckDBTypeId.FLOAT,
  DuckDBTypeId.DOUBLE,
  DuckDBTypeId.DECIMAL,
]);

/**
 * A query's rows as text lines (each with its line end):
 * - `table`: aligned columns under a header, numbers to the right, NULL shown as NULL (reads
 *   every row first, to size the columns);
 * - `csv`: RFC 4180, a header row, CRLF line ends, fields quoted where they must be, NULL empty;
 * - `json`: one JSON object per row (NDJSON), streamed; integers and decimals as numbers while
 *   a double holds them exactly (as strings beyond: integers past 2^53, decimals of more than
 *   15 digits), timestamps as ISO 8601 UTC strings (`2026-01-05T10:00:00.123Z`).
 * Table and CSV show values as DuckDB prints them (timestamps as `2026-01-05 10:00:00.123+00`).
 */
export async function* formatResult(result: DuckDBResult, format: QueryFormat): AsyncGenerator<string> {
  const names = result.deduplicatedColumnNames();
  const types = result.columnTypes().map((t) => t.typeId);
  if (format === 'json') {
    for await (const rows of chunks(result, (c) => c.convertRows(JsonDuckDBValueConverter))) {
      for (const row of rows) yield `${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, jsonValue(row[i]!, types[i]!)])))}\n`;
    }
    return;
  }
  if (format === 'csv') {
    yield `${names.map(csvField).join(',')}\r\n`;
    for await (const rows of chunks(result, (c) => c.getRows())) {
      for (const row of rows) yield `${row.map((v) => (v === null ? '' : csvField(text(v)))).join(',')}\r\n`;
    }
    return;
  }
  const cells: string[][] = [];
  for await (const rows of chunks(result, (c) => c.getRows())) {
    for (const row of rows) cells.push(row.map((v) => (v === null ? 'NULL' : text(v))));
  }
  const widths = names.map((n, i) => Math.max(n.length, ...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    `${row
      .map((cell, i) => (NUMERIC.has(types[i]!) ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd()}\n`;
  yield line(names);
  yield line(widths.map((w) => '-'.repeat(w)));
  for (const row of cells) yield line(row);
}

async function* chunks<T>(
  result: DuckDBResult,
  rowsOf: (chunk: NonNullable<Awaited<ReturnType<DuckDBResult['fetchChunk']>>>) => T,
): AsyncGenerator<T> {
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) return;
    yield rowsOf(chunk);
  }
}

function text(v: DuckDBValue): string {
  return typeof v === 'string' ? v : String(v);
}

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A double holds any decimal of up to 15 significant digits exactly enough to print it back the same. */
const EXACT_DECIMAL_DIGITS = 15;

function jsonValue(v: Json, type: DuckDBTypeId): Json {
  if (typeof v !== 'string') return v;
  if (WIDE_INTEGERS.has(type)) {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (type === DuckDBTypeId.DECIMAL) {
    return v.replace(/^-?0*|\./g, '').length <= EXACT_DECIMAL_DIGITS ? Number(v) : v;
  }
  // The process's zone is UTC, so DuckDB's text ends in +00: the same instant in ISO form.
  if (type === DuckDBTypeId.TIMESTAMP_TZ) return v.replace(' ', 'T').replace(/\+00$/, 'Z');
  return v;
}
