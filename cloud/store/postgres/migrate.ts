import type pg from 'pg';
import { inTransaction } from './connection.js';
import { LOCKS, PG_MIGRATIONS } from './schema.js';

/**
 * Brings the database's schema up to date before anything else touches it: migration i
 * (0-based) takes it from version i to i + 1, and `schema_version` records where it stands.
 * Detectors, dispatchers and consoles on many hosts may start at once: each migrates under
 * one advisory lock, in one transaction (PostgreSQL's DDL is transactional), so the steps run
 * once, in order, and a failed step leaves the database as it was.
 */
export async function migrate(pool: pg.Pool, location: string): Promise<void> {
  await inTransaction(pool, async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(${LOCKS.migrate})`);
    await c.query('CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)');
    const row = (await c.query<{ version: number }>('SELECT version FROM schema_version')).rows[0];
    if (row === undefined) await c.query('INSERT INTO schema_version (version) VALUES (0)');
    const at = row?.version ?? 0;
    if (at > PG_MIGRATIONS.length)
      throw new Error(
        `${location} has schema version ${at}, newer than this release knows (${PG_MIGRATIONS.length}); upgrade before opening it`,
      );
    for (const step of PG_MIGRATIONS.slice(at)) await c.query(step);
    if (at < PG_MIGRATIONS.length) await c.query('UPDATE schema_version SET version = $1', [PG_MIGRATIONS.length]);
  });
}
