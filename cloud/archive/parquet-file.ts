import { DuckDBDataChunk, type DuckDBAppender, type DuckDBConnection, type DuckDBVector } from '@duckdb/node-api';
import { CLOCKS, FIXES, QUALITIES, SENSORS, type Reading } from '../../shared/contract/reading.js';
import { ARCHIVE_COLUMNS } from './archive-row.js';
import { duckdb } from './duckdb.js';

export type ParquetCompression = 'zstd' | 'snappy';

export interface ParquetOptions {
  /** zstd (the default) is about a sixth smaller on readings (BENCHMARKS.md); snappy costs less CPU. */
  compression?: ParquetCompression;
  /**
   * Rows per row group. A row group is the unit a reader skips by its min/max statistics and
   * the unit DuckDB scans in parallel. DuckDB's own default of 122,880 rows (60 vectors) is
   * most of a megabyte of readings at 5 to 6 bytes each: large enough that per-group headers
   * and statistics cost nothing measurable, small enough that a 64 MiB file has dozens of
   * groups to spread over cores and that a time-range query skips most of them (rows are in
   * stream order, so each group spans a short stretch of `ts`).
   */
  rowGroupRows?: number;
}

export const DEFAULT_ROW_GROUP_ROWS = 122_880;

/** DuckDB's vector size: the most rows one data chunk holds. */
const MAX_CHUNK_ROWS = 2048;

/** How each archive column is staged: numbers as DOUBLE, small vocabularies as ENUMs. */
const STAGED: Record<(typeof ARCHIVE_COLUMNS)[number][0], string> = {
  vehicle: 'VARCHAR',
  seq: 'DOUBLE',
  ts: 'DOUBLE',
  sensor: sqlEnum(SENSORS),
  value: 'DOUBLE',
  quality: sqlEnum(QUALITIES),
  clock: sqlEnum(CLOCKS),
  lat: 'DOUBLE',
  lon: 'DOUBLE',
  heading: 'DOUBLE',
  fix: sqlEnum(FIXES),
  received_at: 'DOUBLE',
};

/** The archive's columns from the staged ones: integers back from doubles, epoch ms to timestamps. */
const SELECT_ARCHIVE_COLUMNS = ARCHIVE_COLUMNS.map(([name, type]) =>
  type === 'TIMESTAMPTZ' ? `CAST(epoch_ms(CAST(${name} AS BIGINT)) AS TIMESTAMPTZ) AS ${name}` : `CAST(${name} AS ${type}) AS ${name}`,
).join(', ');

/**
 * An empty staging table and its appender. A temporary table belongs to its connection, so
 * each staging has its own; it is replaced after each file rather than emptied, since
 * DuckDB keeps deleted rows' storage until a checkpoint that an in-memory table never gets.
 */
async function newStagingTable(connection: DuckDBConnection): Promise<DuckDBAppender> {
  const columns = ARCHIVE_COLUMNS.map(([name]) => `${name} ${STAGED[name]}`).join(', ');
  await connection.run(`CREATE OR REPLACE TEMPORARY TABLE staged (${columns})`);
  return connection.createAppender('staged', 'main', 'temp');
}

/**
 * Readings on their way into one Parquet file, appended as they arrive. They go straight
 * into DuckDB's columnar vectors, a vector of 2,048 rows at a time, and from there into a
 * staging table in DuckDB's memory (which spills to disk past its limit): millions of rows
 * cost no JS object each. Numbers cross as doubles (a typed-array write each; integers up to
 * 2^53 are exact), the small vocabularies as ENUM codes, and only the vehicle as a string.
 * Rows keep their order, so the same readings always give the same file.
 */
export class ParquetStaging {
  private readonly chunk: DuckDBDataChunk;
  private vectors: DuckDBVector[] = [];
  private filled = 0;
  private staged = 0;

  private constructor(
    private readonly connection: DuckDBConnection,
    private appender: DuckDBAppender,
  ) {
    const types = ARCHIVE_COLUMNS.map((_, i) => appender.columnType(i));
    this.chunk = DuckDBDataChunk.create(types);
    this.startChunk();
  }

  static async create(): Promise<ParquetStaging> {
    const connection = await (await duckdb()).connect();
    return new ParquetStaging(connection, await newStagingTable(connection));
  }

  /** Rows appended since the last write. */
  get rows(): number {
    return this.staged + this.filled;
  }

  append(r: Reading, receivedAt: number): void {
    const v = this.vectors;
    const i = this.filled;
    const p = r.position;
    v[0]!.setItem(i, r.vehicle);
    v[1]!.setItem(i, r.seq);
    v[2]!.setItem(i, r.ts);
    v[3]!.setItem(i, r.sensor);
    v[4]!.setItem(i, r.value);
    v[5]!.setItem(i, r.quality);
    v[6]!.setItem(i, r.clock);
    v[7]!.setItem(i, p ? p.lat : null);
    v[8]!.setItem(i, p ? p.lon : null);
    v[9]!.setItem(i, p ? p.heading : null);
    v[10]!.setItem(i, p ? p.fix : null);
    v[11]!.setItem(i, receivedAt);
    if (++this.filled === this.chunk.rowCount) this.appendChunk();
  }

  /**
   * Writes every row appended since the last write to `path` (replacing it) as the archive's
   * Parquet file, and empties the staging for the next file.
   */
  async write(path: string, opts: ParquetOptions = {}): Promise<void> {
    if (this.filled > 0) this.appendChunk();
    this.appender.flushSync();
    const rowGroupRows = opts.rowGroupRows ?? DEFAULT_ROW_GROUP_ROWS;
    if (!Number.isInteger(rowGroupRows) || rowGroupRows < 1)
      throw new Error(`rowGroupRows must be a positive integer, not ${rowGroupRows}`);
    await this.connection.run(
      `COPY (SELECT ${SELECT_ARCHIVE_COLUMNS} FROM staged) TO ${sqlString(path)} ` +
        `(FORMAT parquet, COMPRESSION ${opts.compression ?? 'zstd'}, ROW_GROUP_SIZE ${rowGroupRows})`,
    );
    this.appender.closeSync();
    this.appender = await newStagingTable(this.connection);
    this.staged = 0;
  }

  close(): void {
    this.appender.closeSync();
    this.connection.closeSync();
  }

  /** Hands the filled vectors to DuckDB and starts a fresh chunk in the same memory. */
  private appendChunk(): void {
    for (const vector of this.vectors) vector.flush();
    // Shrinking the row count drops the chunk's vector views: flushed first, so nothing is lost.
    this.chunk.rowCount = this.filled;
    this.appender.appendDataChunk(this.chunk);
    this.staged += this.filled;
    this.chunk.reset();
    this.startChunk();
  }

  private startChunk(): void {
    this.chunk.rowCount = MAX_CHUNK_ROWS;
    this.vectors = ARCHIVE_COLUMNS.map((_, i) => this.chunk.getColumnVector(i));
    this.filled = 0;
  }
}

function sqlEnum(values: readonly string[]): string {
  return `ENUM(${values.map(sqlString).join(', ')})`;
}

export function sqlString(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}
