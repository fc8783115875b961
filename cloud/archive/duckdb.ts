import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';

/**
 * DuckDB's share of a process: enough to stage and write one archive file or run a query
 * over a month, small enough to sit beside a detector. Beyond it DuckDB spills to its
 * temporary directory rather than grow.
 */
const MEMORY_LIMIT = '1GB';

let instance: Promise<DuckDBInstance> | undefined;

/**
 * The process's one DuckDB (in memory): starting one costs tens of milliseconds, and a memory
 * limit holds for the whole process only if there is one. Its clock zone is UTC, so
 * timestamps convert and print the same on every host, and it keeps rows in the order they
 * were appended, so the same input always gives the same file.
 */
export function duckdb(): Promise<DuckDBInstance> {
  if (!instance) {
    // Per process: two DuckDBs must not share spill files. DuckDB makes the directory at
    // start and leaves it behind when closed, so the exit removes it.
    instance = create(join(tmpdir(), `fleet-duckdb-${process.pid}`));
  }
  return instance;
}

async function create(spill: string): Promise<DuckDBInstance> {
  const db = await DuckDBInstance.create(':memory:', {
    memory_limit: MEMORY_LIMIT,
    temp_directory: spill,
    preserve_insertion_order: 'true',
  });
  // TimeZone belongs to the ICU extension, which loads after the start-up settings apply.
  const connection = await db.connect();
  await connection.run("SET GLOBAL TimeZone = 'UTC'");
  connection.closeSync();
  process.once('exit', () => {
    db.closeSync();
    rmSync(spill, { recursive: true, force: true });
  });
  return db;
}
