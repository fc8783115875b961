import pg from 'pg';
import type { Logger } from '../../../shared/log.js';

/**
 * node-postgres (`pg`), measured beside porsager's `postgres` on the detector's write path
 * (bench/postgres-client.ts, BENCHMARKS.md): as fast within the noise, and its pool reports a connection
 * the server ended as an event we log, opening another when next needed, so a restarted
 * PostgreSQL needs nothing from us.
 */

/** ms timestamps and counts are bigint: read as numbers (exact up to 2^53, far past any ms or count here). */
const INT8: number = pg.types.builtins.INT8;
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary'): unknown =>
    oid === INT8 ? Number : (pg.types.getTypeParser(oid, format) as unknown)) as pg.CustomTypesConfig['getTypeParser'],
};

/** How long a query waits for a connection: while PostgreSQL is away, writes fail this soon and are retried. */
const CONNECT_TIMEOUT_MS = 5000;

export function createPool(url: string, log?: Logger): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, types, max: 4, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection the server ended (a restart): the pool drops it and opens another when needed.
  pool.on('error', (err) => log?.warn({ err: err.message, code: (err as { code?: string }).code }, 'store: PostgreSQL connection lost'));
  return pool;
}

/** Runs `fn` in one transaction on one connection; rolled back if it throws. */
export async function inTransaction<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  let broken = false;
  // The pool stops listening to a connection it hands out: a server that goes away mid-transaction
  // (a restart) emits 'error' on it besides failing the query, and unheard that ends the process.
  const lost = () => (broken = true);
  c.on('error', lost);
  try {
    await c.query('BEGIN');
    const result = await fn(c);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => (broken = true));
    throw err;
  } finally {
    c.off('error', lost);
    // A connection lost, or that could not even roll back, is not given to the next caller.
    c.release(broken);
  }
}

/** The URL without its password, for logs and errors. */
export function redacted(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
