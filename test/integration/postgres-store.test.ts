import assert from 'node:assert/strict';
import pg from 'pg';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { PgStore } from '../../cloud/store/postgres/pg-store.js';
import { PARTITIONS, PG_MIGRATIONS } from '../../cloud/store/postgres/schema.js';
import { freePort, waitFor } from '../support/harness.js';
import { query, startPostgres, type PostgresServer } from '../support/postgres.js';
import { latestSeqs, storeContract, storeReadings } from '../support/store-contract.js';

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
    assert.deepEqual(await query(url, 'SELECT version FROM schema_version'), [{ version: PG_MIGRATIONS.length }]);
  });

  it('versions the latest values of a database from the release before, so a console reads them and then what moved', async () => {
    const url = await server.createDatabase();
    await query(
      url,
      `${PG_MIGRATIONS[0]}; CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (1);
      INSERT INTO latest VALUES ('a', 'speed', 1, 0, 1, NULL, NULL, NULL)`,
    );
    const store = new PgStore(url);
    await store.open();
    const adopted = await store.latestRowsSince(undefined);
    assert.deepEqual(latestSeqs(adopted.rows), { 'a speed': 1 });
    await storeReadings(store, [{ vehicle: 'b', seq: 1, ts: 0, clock: 'synced', sensor: 'speed', value: 1, quality: 'good' }], 0);
    assert.equal(latestSeqs((await store.latestRowsSince(adopted.cursor)).rows)['b speed'], 1);
    await store.close();
  });

  it('refuses a database from a newer release instead of guessing at its schema', async () => {
    const url = await server.createDatabase();
    await query(url, 'CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (99)');
    const store = new PgStore(url);
    await assert.rejects(store.open(), /has schema version 99, newer than this release knows \(2\)/);
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

  it('gives a latest value written before another to a reader that saw the other commit first', async () => {
    const url = await server.createDatabase();
    const [first, second] = [new PgStore(url), new PgStore(url)];
    await Promise.all([first.open(), second.open()]);
    const r = (vehicle: string, seq: number) =>
      ({ vehicle, seq, ts: Date.UTC(2026, 5, 10), clock: 'synced', sensor: 'speed', value: seq, quality: 'good' }) as const;
    await first.write({ received: [], duplicates: 1, events: [], at: 0 });
    const { cursor } = await first.latestRowsSince(undefined);
    // The first writer moves its value, then waits on the duplicates counter held here before it can commit.
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query(`BEGIN; SELECT value FROM counters WHERE name = 'duplicates' FOR UPDATE`);
    const slow = first.write({ received: [{ readings: [r('a', 1)], receivedAt: 0 }], duplicates: 1, events: [], at: 0 });
    await waitFor('the first writer waiting', async () => (await query(url, `SELECT 1 FROM pg_locks WHERE NOT granted`)).length > 0);
    await storeReadings(second, [r('b', 1)], 0);
    const seen = await second.latestRowsSince(cursor);
    assert.deepEqual(latestSeqs(seen.rows), { 'b speed': 1 });
    await holder.query('COMMIT');
    await holder.end();
    await slow;
    assert.equal(latestSeqs((await second.latestRowsSince(seen.cursor)).rows)['a speed'], 1);
    await Promise.all([first.close(), second.close()]);
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
