import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { FleetStore } from '../../cloud/store.js';
import { PgStore } from '../../cloud/store/postgres/pg-store.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import type { Reading } from '../../shared/contract/reading.js';
import { hotAlert } from '../support/alert-fixtures.js';
import { freePort, runFleet, tempDir, waitFor } from '../support/harness.js';
import { query, startPostgres, type PostgresServer } from '../support/postgres.js';
import { storeAlertEvents, storeReadings } from '../support/store-contract.js';

const T = Date.UTC(2026, 0, 5, 10);
const HOUR = 3_600_000;
const VEHICLES = ['truck-1', 'truck-2', 'truck-3', 'truck-4'];
/** Readings per vehicle: with small pages, enough that a kill lands mid-copy. */
const PER_VEHICLE = 3000;
const PAGE_ROWS = '100';

/** Over three days of event time, so the copy needs several day partitions; every tenth a GPS fix. */
function reading(vehicle: string, seq: number): Reading {
  const ts = T - 2 * 24 * HOUR + seq * 60_000;
  return seq % 10 === 0
    ? {
        vehicle,
        seq,
        ts,
        clock: 'synced',
        sensor: 'gps',
        value: 50,
        quality: 'good',
        position: { lat: 48 + seq / 1e4, lon: 11.5, heading: 90, fix: '3d' },
      }
    : { vehicle, seq, ts, clock: 'synced', sensor: 'engine_temp', value: 80 + (seq % 30), quality: seq % 97 ? 'good' : 'bad' };
}

/** A store as the embedded setup leaves it, filled through the store's own API. */
async function fillSource(path: string): Promise<void> {
  const store = new SqliteStore(path);
  for (const vehicle of VEHICLES)
    for (let seq = 1; seq <= PER_VEHICLE; seq += 500)
      await storeReadings(
        store,
        Array.from({ length: 500 }, (_, i) => reading(vehicle, seq + i)),
        T + seq,
      );
  // Delivered twice: counted as duplicates.
  await store.write({
    received: [{ readings: [reading('truck-1', 7), reading('truck-2', 8)], receivedAt: T + 1 }],
    duplicates: 1,
    events: [],
    at: T,
  });

  const [acked, cleared, historical, health] = [
    hotAlert('truck-1'),
    hotAlert('truck-2'),
    hotAlert('truck-3', { live: false }),
    hotAlert('truck-4', { driver: false }),
  ];
  await storeAlertEvents(
    store,
    [acked, cleared, historical, health].map((alert) => ({ kind: 'raised' as const, alert })),
    T + 20_000,
  );
  await storeAlertEvents(store, [{ kind: 'promoted', alert: { ...historical, live: true, observed: 125 } }], T + 21_000);
  await store.acknowledge(acked.id, 'alice', T + 22_000);
  await store.clear(cleared.id, 'bob', T + 23_000);
  await storeAlertEvents(
    store,
    [{ kind: 'cleared', alertId: health.id, vehicle: 'truck-4', rule: 'hot', at: T + 24_000, reason: 'level_shift' }],
    T + 24_000,
  );
  await store.deliveries.claim(acked.id, 'driver', T + 25_000);
  await store.deliveries.sent(acked.id, 'driver', T + 26_000, true);
  await store.deliveries.acknowledged(acked.id, 'driver', T + 27_000);
  await store.deliveries.claim(acked.id, 'webhook', T + 25_000);
  await store.deliveries.sent(acked.id, 'webhook', T + 26_000, false);
  await store.deliveries.claim(cleared.id, 'webhook', T + 28_000);
  await store.deliveries.expired(historical.id, 'driver', T + 29_000);
  await store.sessions.create('session-hash', { user: 'alice', expiresAt: Date.now() + HOUR }, Date.now(), 10);
  await store.close();
}

/** Everything a store holds, read through its API, change ids left out (the target draws its own). */
async function contents(store: FleetStore) {
  const readings = [];
  for (let after, page; (page = await store.readingsPage(after, 5000)).length > 0; after = page.at(-1)!.reading) readings.push(...page);
  const alerts = [];
  for (let after, page; (page = await store.alertsPage(after, 2)).length > 0; after = page.at(-1)!.id) alerts.push(...page);
  const deliveries = [];
  for (let after, page; (page = await store.deliveriesPage(after, 2)).length > 0; after = page.at(-1)) deliveries.push(...page);
  return {
    readings,
    counts: await store.counts(),
    latest: (await store.latestRows()).sort((a, b) => `${a.vehicle}/${a.sensor}`.localeCompare(`${b.vehicle}/${b.sensor}`)),
    alerts,
    deliveries,
    changes: (await store.changesAfter(0, 10_000)).map(({ alertId, kind, at }) => ({ alertId, kind, at })),
  };
}

async function pgContents(url: string) {
  const store = new PgStore(url);
  await store.open();
  try {
    return {
      ...(await contents(store)),
      session: await store.sessions.get('session-hash', Date.now()),
      lastChangeId: await store.lastChangeId(),
    };
  } finally {
    await store.close();
  }
}

const copy = (from: string, to: string, ...more: string[]) =>
  runFleet(['store', 'copy', '--from', from, '--to', to, '--page-rows', PAGE_ROWS, ...more]);

describe('fleet store copy', () => {
  const dir = tempDir('fleet-store-copy-');
  const source = join(dir, 'fleet.db');
  let server: PostgresServer;
  let expected: Awaited<ReturnType<typeof contents>>;

  beforeAll(async () => {
    server = await startPostgres();
    await fillSource(source);
    const store = new SqliteStore(source);
    expected = await contents(store);
    await store.close();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('copies every reading, latest value, alert, delivery, change and the duplicates count into PostgreSQL; run again, it adds nothing', async () => {
    assert.equal(expected.readings.length, VEHICLES.length * PER_VEHICLE);
    assert.equal(expected.counts.duplicates, 3);
    const url = await server.createDatabase();
    const first = copy(source, url);
    assert.equal(await first.exited, 0, first.stderr.join('\n'));
    const out = first.lines.join('\n');
    assert.match(out, new RegExp(`readings: ${expected.readings.length} in the source, ${expected.readings.length} new to the target`));
    assert.match(out, /every reading whatever its age: the day partitions it needs are made/);
    assert.match(out, /console sessions are not copied/);
    assert.match(first.stderr.join('\n'), /copied \d+\/12000 readings \(\d+\/s\)/, 'progress on stderr');

    const copied = await pgContents(url);
    const { session, lastChangeId, ...held } = copied;
    assert.deepEqual(held, expected);
    assert.equal(session, undefined);

    const again = copy(source, url);
    assert.equal(await again.exited, 0, again.stderr.join('\n'));
    assert.match(again.lines.join('\n'), /readings: 12000 in the source, 0 new to the target/);
    assert.match(again.lines.join('\n'), /alert changes: \d+ in the source, 0 new to the target/);
    assert.match(again.lines.join('\n'), /duplicates counted: 0 added/);
    assert.deepEqual(await pgContents(url), copied, 'nothing changed, not even the change ids');
  });

  it('killed mid-copy and run again, ends with each item once', async () => {
    const url = await server.createDatabase();
    const killed = copy(source, url);
    await waitFor('the copy under way', () => killed.stderr.some((l) => /copied \d+\/12000 readings/.test(l)));
    killed.child.kill('SIGKILL');
    assert.equal(await killed.exited, null);
    const partial = (await query<{ n: number }>(url, 'SELECT count(*)::int AS n FROM readings'))[0]!.n;
    assert.ok(partial > 0 && partial < expected.readings.length, `killed after ${partial} readings`);

    const rerun = copy(source, url);
    assert.equal(await rerun.exited, 0, rerun.stderr.join('\n'));
    assert.match(rerun.lines.join('\n'), new RegExp(`readings: 12000 in the source, ${12000 - partial} new to the target`));
    const { session: _s, lastChangeId: _l, ...held } = await pgContents(url);
    assert.deepEqual(held, expected);
  });

  it('into a live target, keeps what is newer there: a later latest value and an alert further on', async () => {
    const url = await server.createDatabase();
    const live = new PgStore(url);
    await live.open();
    const newer = { ...reading('truck-1', PER_VEHICLE + 1), sensor: 'engine_temp' as const, ts: T + 24 * HOUR };
    await storeReadings(live, [newer], T + 24 * HOUR);
    await storeAlertEvents(live, [{ kind: 'raised', alert: hotAlert('truck-2') }], T + 20_000);
    await live.clear(hotAlert('truck-2').id, 'carol', T + 22_500);
    const before = await live.lastChangeId();
    await live.close();

    const run = copy(source, url);
    assert.equal(await run.exited, 0, run.stderr.join('\n'));
    const got = await pgContents(url);
    assert.equal(got.latest.find((r) => r.vehicle === 'truck-1' && r.sensor === 'engine_temp')?.seq, PER_VEHICLE + 1);
    const truck2 = got.alerts.find((a) => a.vehicle === 'truck-2')!;
    assert.deepEqual([truck2.state, truck2.clearedBy], ['cleared', 'carol'], 'cleared here first: stays as cleared here');
    assert.equal(got.readings.length, expected.readings.length + 1);
    const ids = (await query<{ id: number }>(url, 'SELECT id FROM alert_changes WHERE id > $1 ORDER BY id', [before])).map((r) => r.id);
    assert.equal(ids.length, expected.changes.length, 'the source changes appended after the live ones');
  });

  it('refuses bad flags with a clear message and exit 2', async () => {
    const newer = await server.createDatabase();
    await query(newer, 'CREATE TABLE schema_version (version integer NOT NULL); INSERT INTO schema_version VALUES (99)');
    const cases: [string[], RegExp][] = [
      [['--from', source, '--to', source], /--from and --to are the same store/],
      [['--from', join(dir, 'missing.db'), '--to', newer], /--from .*missing\.db: no such store file/],
      [['--from', source, '--to', 'postgres://'], /flag --to: to: a PostgreSQL store must be a URL with a host/],
      [['--from', source, '--to', join(dir, 'no-dir', 'x.db')], /--to .*x\.db: its directory .*no-dir does not exist/],
      [['--from', source, '--to', newer], /--to: store .*: .*has schema version 99, newer than this release knows/],
      [
        ['--from', source, '--to', `postgres://fleet:pw@127.0.0.1:${await freePort()}/x`],
        /--to: store postgres:\/\/fleet:\*\*\*@.*ECONNREFUSED/,
      ],
      [['--from', source, '--to', newer, '--page-rows', '0'], /flag --page-rows: pageRows: /],
      [['--from', source], /required option '--to <store>' not specified/],
    ];
    const runs = cases.map(([args]) => runFleet(['store', 'copy', ...args]));
    for (const [i, [args, message]] of cases.entries()) {
      assert.equal(await runs[i]!.exited, 2, args.join(' '));
      assert.match(runs[i]!.stderr.join('\n'), message);
    }
    const help = runFleet(['store', 'copy', '--help']);
    assert.equal(await help.exited, 0);
    assert.match(help.lines.join('\n'), /Usage: fleet store copy/);
  });
});
