import { join } from 'node:path';
import { setImmediate as yieldToEvents, setTimeout as sleep } from 'node:timers/promises';
import { DuckDBPendingResultState, type DuckDBConnection, type DuckDBResult } from '@duckdb/node-api';
import { syncArchiveCache, type CacheProgress } from './archive-cache.js';
import { DATA_GLOB, type DayRange } from './archive-partitions.js';
import { ARCHIVE_COLUMNS } from './archive-row.js';
import { duckdb } from './duckdb.js';
import { openArchiveStore, parseArchiveUrl } from './open-archive-store.js';
import { sqlString } from './parquet-file.js';

export interface ReadingsViewOptions {
  /** `file:///…` or `s3://bucket/prefix`. */
  archive: string;
  /** Where a bucket's objects are copied to be queried (DuckDB here cannot read S3 itself). */
  cacheDir: string;
  /** Which `dt=` partitions are fetched and seen. */
  range: DayRange;
  onFetch?: (p: CacheProgress) => void;
}

export interface ReadingsView {
  connection: DuckDBConnection;
  /** The local directory the view reads. */
  root: string;
  /** Set when the view is empty because there are no data files: say so rather than print nothing. */
  note?: string;
}

/** Partition columns as the view types them, after the archive's own. */
const PARTITION_COLUMNS = [
  ['dt', 'DATE'],
  ['hour', 'INTEGER'],
] as const;

/**
 * A DuckDB connection with a `readings` view over the archive's data files (hive-partitioned
 * by `dt` and `hour`, files of different column sets united by name), limited to `range`. A
 * bucket's files in the range are first brought into the local cache.
 */
export async function openReadingsView(opts: ReadingsViewOptions): Promise<ReadingsView> {
  const at = parseArchiveUrl(opts.archive);
  let root: string;
  if (at.scheme === 'file') {
    root = at.dir;
  } else {
    root = join(opts.cacheDir, at.bucket, at.prefix);
    await syncArchiveCache(openArchiveStore(opts.archive), root, opts.range, opts.onFetch);
  }
  const connection = await (await duckdb()).connect();
  const glob = sqlString(join(root, DATA_GLOB));
  const [[files]] = (await connection.runAndReadAll(`SELECT count(*) FROM glob(${glob})`)).getRows() as [[bigint]];
  if (files === 0n) {
    // read_parquet refuses a glob that matches nothing: the view is typed and empty instead.
    const columns = [...ARCHIVE_COLUMNS, ...PARTITION_COLUMNS].map(([name, type]) => `CAST(NULL AS ${type}) AS ${name}`);
    await connection.run(`CREATE TEMPORARY VIEW readings AS SELECT ${columns.join(', ')} WHERE false`);
    return { connection, root, note: `no archive files under ${opts.archive} yet: readings is empty` };
  }
  const hiveTypes = `{${PARTITION_COLUMNS.map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`).join(', ')}}`;
  const where = [
    opts.range.from && `dt >= DATE ${sqlString(opts.range.from)}`,
    opts.range.to && `dt <= DATE ${sqlString(opts.range.to)}`,
  ].filter(Boolean);
  await connection.run(
    `CREATE TEMPORARY VIEW readings AS SELECT * FROM read_parquet(${glob}, hive_partitioning = true, ` +
      `hive_types = ${hiveTypes}, union_by_name = true)${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`,
  );
  return { connection, root };
}

/** How far a running statement is, as DuckDB estimates it (percentage -1 while it cannot tell). */
export interface QueryProgress {
  percentage: number;
  rowsProcessed: number;
}

const PROGRESS_EVERY_MS = 250;

/**
 * Runs `sql` (one or more statements; the last one's rows are the result, streamed). With
 * `onProgress`, the last statement runs a task at a time so its progress can be reported
 * between tasks; bad SQL rejects with DuckDB's message.
 */
export async function runQuery(connection: DuckDBConnection, sql: string, onProgress?: (p: QueryProgress) => void): Promise<DuckDBResult> {
  if (sql.trim() === '') throw new Error('no SQL statement to run');
  if (onProgress) {
    // DuckDB tracks a query's progress only with its progress bar on; it prints nothing here.
    await connection.run('SET enable_progress_bar = true');
    await connection.run('SET enable_progress_bar_print = false');
  }
  const statements = await connection.extractStatements(sql).catch((err: Error) => {
    // A syntax error: DuckDB's own message, without the binding's wrapper.
    throw new Error(err.message.replace(/^Failed to extract statements: /, ''));
  });
  if (statements.count === 0) throw new Error('no SQL statement to run');
  for (let i = 0; i < statements.count - 1; i++) await (await statements.prepare(i)).run();
  const last = await statements.prepare(statements.count - 1);
  if (!onProgress) return last.stream();
  const pending = last.startStream();
  let reported = Date.now();
  for (;;) {
    const state = pending.runTask();
    if (state === DuckDBPendingResultState.RESULT_READY) break;
    if (Date.now() - reported >= PROGRESS_EVERY_MS) {
      reported = Date.now();
      const p = connection.progress;
      onProgress({ percentage: p.percentage, rowsProcessed: Number(p.rows_processed) });
    }
    // Let the event loop breathe between tasks; wait a little when DuckDB's threads hold them all.
    if (state === DuckDBPendingResultState.NO_TASKS_AVAILABLE) await sleep(1);
    else await yieldToEvents();
  }
  return pending.getResult();
}
