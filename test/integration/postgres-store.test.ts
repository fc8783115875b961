import assert from 'node:assert/strict';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { PgStore } from '../../cloud/store/postgres/pg-store.js';
import { PARTITIONS } from '../../cloud/store/postgres/schema.js';
import { freePort } from '../support/harness.js';
import { query, startPostgres, type PostgresServer } from '../support/postgres.js';
import { storeContract } from '../support/store-contract.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

storeContract('PostgreSQL', () => server.createDatabase());

describe('the PostgreSQL store', () => {
  it('migrates once however many processes open it at the same time, and records the version', async () => {
    const url = await server.createDatabase();
    const stores = Array.from({ length: 4 }, () => new PgStore(url));
    await Promise.all(stores.map((s) => s.open()));
    for (const s of stores) await s.close();
    assert.deepEqual(await query(url, 'SELECT version FROM schema_version'), [{ version: 1 }]);
  });

  it('refuses a database from a newer release instead of guessing at its schema', async () => {
    const url = await server.createDatabase();
    await query(url, 'CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (99)');
    const store = new PgStore(url);
    await assert.rejects(store.open(), /has schema version 99, newer than this release knows \(1\)/);
    await store.close();
  });

  it('says which database it could not reach, without its password', async () => {
    const url = `postgres://fleet:s3cret@127.0.0.1:${await freePort()}/fleet`;
    const store = new PgStore(url);
    await assert.rejects(store.open(), (err: Error) => {
      assert.match(err.message, /^store postgres:\/\/fleet:\*\*\*@127\.0\.0\.1:\d+\/fleet: .*ECONNREFUSED/);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    await store.close();
  });

  it('keeps readings in day partitions of event time and drops whole days past retention', async () => {
    const url = await server.createDatabase();
    const store = new PgStore(url);
    await store.open();
    const day = 86_400_000;
    const t = Date.UTC(2026, 5, 10, 12);
    const r = (seq: number, ts: number) => ({
      vehicle: 'v',
      seq,
      ts,
      clock: 'synced' as const,
      sensor: 'speed' as const,
      value: 1,
      quality: 'good' as const,
    });
    await store.write({ received: [{ readings: [r(1, t - 3 * day), r(2, t)], receivedAt: t }], duplicates: 0, events: [], at: t });
    const partitions = async () => (await query<{ name: string }>(url, `${PARTITIONS} ORDER BY 1`)).map((p) => p.name);
    assert.deepEqual(await partitions(), ['readings_20260607', 'readings_20260608', 'readings_20260610', 'readings_20260611']);
    assert.equal(await store.dropReadingsBefore(t - day), 1);
    assert.deepEqual(await partitions(), ['readings_20260610', 'readings_20260611']);
    // A partition dropped under a writer that knew it is made again on its next write.
    await store.write({ received: [{ readings: [r(3, t - 3 * day)], receivedAt: t }], duplicates: 0, events: [], at: t });
    assert.equal((await store.counts()).readingsStored, 2);
    await store.close();
  });
});
