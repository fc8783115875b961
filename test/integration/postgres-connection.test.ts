import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { createPool, inTransaction } from '../../cloud/store/postgres/connection.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

describe('a PostgreSQL store connection while the server restarts', () => {
  let server: PostgresServer;
  let url: string;

  beforeAll(async () => {
    server = await startPostgres();
    url = await server.createDatabase();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('fails the transaction under way, keeps the process, and works again once the server is back', async () => {
    const pool = createPool(url);
    try {
      // Its outcome taken at once: it fails while the server stops, before anything awaits it.
      const underWay = inTransaction(pool, (c) => c.query('SELECT pg_sleep(30)')).then(
        () => 'committed',
        (err: Error) => err,
      );
      // The transaction holds its connection, inside pg_sleep, when the server stops.
      await new Promise((r) => setTimeout(r, 500));
      await server.stop();
      assert.ok((await underWay) instanceof Error, 'the transaction under way failed');
      await server.restart();
      const [row] = await inTransaction(pool, async (c) => (await c.query<{ n: number }>('SELECT 1 AS n')).rows);
      assert.equal(row?.n, 1);
    } finally {
      await pool.end();
    }
  });
});
