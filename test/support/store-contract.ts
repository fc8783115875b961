import assert from 'node:assert/strict';
import { afterAll, describe, it } from 'vitest';
import type { FleetStore, LatestRow } from '../../cloud/store.js';
import { openStore } from '../../cloud/store/open-store.js';
import type { Alert } from '../../shared/contract/alert.js';
import type { Reading } from '../../shared/contract/reading.js';
import type { AlertEvent } from '../../shared/rules/engine.js';

const T = Date.UTC(2026, 0, 5, 10);
const DAY = 86_400_000;

export function testAlert(vehicle: string, over: Partial<Alert> = {}): Alert {
  return {
    id: `${vehicle}.hot.${T}`,
    vehicle,
    rule: 'hot',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart: T,
    windowStart: T,
    windowEnd: T + 10_000,
    observed: 110,
    expected: 105,
    message: 'hot',
    live: true,
    driver: true,
    raisedAt: T,
    closedAt: T + 10_000,
    ...over,
  };
}

function reading(vehicle: string, seq: number, ts: number, over: Partial<Reading> = {}): Reading {
  return { vehicle, seq, ts, clock: 'synced', sensor: 'engine_temp', value: 90 + seq, quality: 'good', ...over };
}

const events = (store: FleetStore, list: AlertEvent[], at = T) => store.write({ received: [], duplicates: 0, events: list, at });
const raise = (store: FleetStore, ...alerts: Alert[]) =>
  events(
    store,
    alerts.map((alert) => ({ kind: 'raised' as const, alert })),
  );
const ids = (alerts: { id: string }[]) => alerts.map((a) => a.id);
const changes = async (store: FleetStore) =>
  (await store.changesAfter(0)).filter((c) => c.kind !== 'raised').map((c) => `${c.kind} ${c.alertId}`);

/**
 * What every operational store does, whatever its database: the same tests run on SQLite
 * (test/unit/cloud/store.test.ts) and on PostgreSQL (test/integration/postgres-store.test.ts).
 * `newLocation` gives the `store` setting of a fresh, empty store.
 */
export function storeContract(name: string, newLocation: () => Promise<string>): void {
  const opened: FleetStore[] = [];
  afterAll(async () => {
    for (const s of opened.splice(0)) await s.close().catch(() => undefined);
  });
  async function open(location?: string): Promise<FleetStore> {
    const store = openStore(location ?? (await newLocation()));
    await store.open();
    opened.push(store);
    return store;
  }

  describe(`the operational store on ${name}: readings`, () => {
    it('keeps each (vehicle, seq) once and counts the repeats, within a write and across writes', async () => {
      const store = await open();
      const first = await store.write({
        received: [{ readings: [reading('truck-1', 1, T), reading('truck-1', 2, T + 1000)], receivedAt: T + 5 }],
        duplicates: 1,
        events: [],
        at: T,
      });
      assert.deepEqual(first, { stored: 2, duplicates: 1, changed: [] });
      const keys = await store.storedKeys([reading('truck-1', 2, T + 1000), reading('truck-1', 3, T + 2000)]);
      assert.deepEqual([...keys], ['truck-1\u00002']);
      const again = await store.write({
        received: [{ readings: [reading('truck-1', 2, T + 1000), reading('truck-1', 3, T + 2000)], receivedAt: T + 6 }],
        duplicates: 0,
        events: [],
        at: T,
      });
      assert.deepEqual(again, { stored: 1, duplicates: 1, changed: [] }, 'the repeat dropped and counted');
      assert.deepEqual(await store.counts(), { readingsStored: 3, duplicates: 2 });
    });

    it('a retried write finds its own readings stored and does not count them again', async () => {
      const store = await open();
      const w = { received: [{ readings: [reading('truck-1', 1, T)], receivedAt: T }], duplicates: 0, events: [], at: T };
      await store.write(w);
      assert.deepEqual(await store.write({ ...w, retry: true }), { stored: 0, duplicates: 0, changed: [] });
      assert.deepEqual(await store.counts(), { readingsStored: 1, duplicates: 0 });
    });

    it('keeps the latest value per vehicle and sensor by seq, and gives series and tracks in event time', async () => {
      const store = await open();
      const gps = (seq: number, ts: number, lat: number) =>
        reading('truck-1', seq, ts, { sensor: 'gps', value: 50, position: { lat, lon: 11.5, heading: 90, fix: '3d' } });
      await store.write({
        received: [
          {
            readings: [
              reading('truck-1', 2, T + 2000),
              reading('truck-1', 3, T + 3000, { quality: 'bad', value: -1 }),
              gps(4, T, 48.1),
              gps(5, T + 500, 48.2),
              gps(6, T + 20_000, 48.3),
            ],
            receivedAt: T,
          },
        ],
        duplicates: 0,
        events: [],
        at: T,
      });
      // An older reading arriving late does not move the latest value back.
      await store.write({ received: [{ readings: [reading('truck-1', 1, T + 1000)], receivedAt: T }], duplicates: 0, events: [], at: T });
      const latest = await store.latestRows();
      assert.deepEqual(latest.map((r) => [r.sensor, r.seq, r.value]).sort(), [
        ['engine_temp', 3, -1],
        ['gps', 6, 50],
      ]);
      assert.deepEqual(await store.readingSeries('truck-1', 'engine_temp', T), [
        { ts: T + 1000, value: 91 },
        { ts: T + 2000, value: 92 },
      ]);
      const tracks = await store.tracks(T, 10_000);
      assert.deepEqual(tracks.get('truck-1'), [
        { lat: 48.2, lon: 11.5, ts: T + 500 },
        { lat: 48.3, lon: 11.5, ts: T + 20_000 },
      ]);
    });

    it('gives the latest values moved since a cursor, by writes and by imports', async () => {
      const store = await open();
      const first = await store.latestRowsSince(undefined);
      assert.deepEqual(first.rows, []);
      await storeReadings(store, [reading('a', 1, T), reading('b', 1, T)], T);
      const written = await store.latestRowsSince(first.cursor);
      assert.deepEqual(latestSeqs(written.rows), { 'a engine_temp': 1, 'b engine_temp': 1 });
      // A late older reading moves nothing; a value given again must be the one seen.
      await storeReadings(store, [reading('a', 2, T + 1), reading('b', 0, T - 1)], T);
      const moved = await store.latestRowsSince(written.cursor);
      assert.deepEqual({ 'b engine_temp': 1, ...latestSeqs(moved.rows) }, { 'a engine_temp': 2, 'b engine_temp': 1 });
      const row = { vehicle: 'c', sensor: 'speed' as const, seq: 3, ts: T, value: 1, lat: null, lon: null, heading: null };
      await store.importLatest([row]);
      assert.deepEqual(
        (await store.latestRowsSince(moved.cursor)).rows.find((r) => r.vehicle === 'c'),
        row,
      );
      assert.equal((await store.latestRowsSince(undefined)).rows.length, 3, 'undefined: every value');
    });

    it('drops readings older than the retention limit and keeps recent ones and the latest values', async () => {
      const store = await open();
      const old = [reading('truck-1', 1, T - 10 * DAY), reading('truck-1', 2, T - 9 * DAY)];
      const recent = [reading('truck-1', 3, T - DAY / 2), reading('truck-1', 4, T)];
      await store.write({ received: [{ readings: [...old, ...recent], receivedAt: T }], duplicates: 0, events: [], at: T });
      assert.equal(await store.dropReadingsBefore(T - 7 * DAY), 2);
      assert.deepEqual(
        (await store.readingSeries('truck-1', 'engine_temp', 0)).map((r) => r.ts),
        [T - DAY / 2, T],
      );
      assert.equal((await store.counts()).readingsStored, 2);
      assert.equal((await store.latestRows())[0]?.seq, 4);
      assert.equal(await store.dropReadingsBefore(T - 7 * DAY), 0, 'nothing more to drop');
    });
  });

  describe(`the operational store on ${name}: export and import`, () => {
    it('gives the stored readings page by page in (vehicle, seq) order, each with its receive time', async () => {
      const store = await open();
      const gps = reading('a', 2, T + 1, { sensor: 'gps', value: 12, position: { lat: 48.1, lon: 11.5, heading: 90, fix: '3d' } });
      await storeReadings(store, [reading('b', 1, T), reading('a', 10, T + 2 * DAY)], T + 5);
      await storeReadings(store, [gps, reading('a', 1, T - 3 * DAY)], T + 6);
      const pages = [];
      for (let after, page; (page = await store.readingsPage(after, 2)).length > 0; after = page.at(-1)!.reading) pages.push(page);
      assert.deepEqual(pages.flat(), [
        { reading: reading('a', 1, T - 3 * DAY), receivedAt: T + 6 },
        { reading: gps, receivedAt: T + 6 },
        { reading: reading('a', 10, T + 2 * DAY), receivedAt: T + 5 },
        { reading: reading('b', 1, T), receivedAt: T + 5 },
      ]);
      assert.equal(pages.length, 2);
    });

    it("takes another store's latest values, alerts, ledger and changes, moving nothing here backwards", async () => {
      const store = await open();
      await storeReadings(store, [reading('a', 5, T)], T);
      const row = { vehicle: 'a', sensor: 'engine_temp' as const, ts: T, value: 1, lat: null, lon: null, heading: null };
      await store.importLatest([
        { ...row, seq: 4 },
        { ...row, sensor: 'speed', seq: 1 },
      ]);
      assert.deepEqual((await store.latestRows()).map((r) => [r.sensor, r.seq]).sort(), [
        ['engine_temp', 5],
        ['speed', 1],
      ]);

      // Here: one alert acknowledged, one cleared, one not yet promoted; the source is behind, ahead, and new.
      const [acked, cleared, past] = [testAlert('a'), testAlert('b'), testAlert('c', { live: false })];
      await raise(store, acked, cleared, past);
      await store.acknowledge(acked.id, 'alice', T + 1);
      await store.clear(cleared.id, 'bob', T + 2);
      const feed = await store.lastChangeId();
      const stored = async (id: string) => (await store.getAlert(id))!;
      const source = [
        {
          ...(await stored(acked.id)),
          state: 'cleared' as const,
          clearedBy: 'detector',
          clearedAt: T + 3,
          clearReason: 'recovered' as const,
        },
        { ...(await stored(cleared.id)), state: 'active' as const, clearedBy: null, clearedAt: null },
        { ...(await stored(past.id)), live: true, observed: 130 },
        { ...(await stored(acked.id)), id: 'new', vehicle: 'd', state: 'acknowledged' as const, ackedBy: 'carol', ackedAt: T + 4 },
      ];
      await store.importAlerts(source);
      await store.importAlerts(source);
      const states = await Promise.all(['a', 'b', 'c', 'd'].map(async (v) => (await store.listAlerts({ vehicle: v }))[0]!));
      assert.deepEqual(
        states.map((a) => [a.state, a.ackedBy, a.clearedBy, a.clearReason, a.live, a.observed]),
        [
          ['cleared', 'alice', 'detector', 'recovered', true, 110],
          ['cleared', null, 'bob', null, true, 110],
          ['active', null, null, null, true, 130],
          ['acknowledged', 'carol', null, null, true, 110],
        ],
      );
      assert.equal(await store.lastChangeId(), feed, 'imported alerts bring no changes of their own');

      await store.deliveries.claim(acked.id, 'driver', T + 5);
      await store.deliveries.sent(acked.id, 'driver', T + 6, true);
      const ledger = [
        { alertId: acked.id, channel: 'driver', state: 'sending', at: T + 5 },
        { alertId: acked.id, channel: 'webhook', state: 'sent', at: T + 7 },
        { alertId: 'new', channel: 'driver', state: 'acknowledged', at: T + 8 },
      ];
      await store.importDeliveries(ledger);
      await store.importDeliveries([{ ...ledger[2]!, state: 'sent' }]);
      const rows = [];
      for (let after, page; (page = await store.deliveriesPage(after, 2)).length > 0; after = page.at(-1)) rows.push(...page);
      assert.deepEqual(rows, [{ alertId: acked.id, channel: 'driver', state: 'sent', at: T + 6 }, ledger[1], ledger[2]]);
      assert.equal((await store.getAlert('new'))!.driverSentAt, T + 8);

      const theirs = [
        { id: 1, alertId: 'new', kind: 'raised', at: T },
        { id: 3, alertId: 'new', kind: 'acknowledged', at: T + 4 },
      ];
      assert.equal(await store.importChanges('source.db', theirs.slice(0, 1)), 1);
      assert.equal(await store.importChanges('source.db', theirs), 1, 'the first was appended before');
      assert.equal(await store.importChanges('other.db', theirs.slice(0, 1)), 1, 'marks are per source');
      const appended = await store.changesAfter((await store.lastChangeId()) - 3);
      assert.deepEqual(
        appended.map((c) => [c.alertId, c.kind, c.at]),
        [
          ['new', 'raised', T],
          ['new', 'acknowledged', T + 4],
          ['new', 'raised', T],
        ],
      );
      assert.ok(appended[0]!.id > feed + 1, 'after the changes here');

      await store.write({ received: [], duplicates: 2, events: [], at: T });
      assert.equal(await store.importDuplicates('source.db', 5), 5);
      assert.equal(await store.importDuplicates('source.db', 5), 0, 'added once');
      assert.equal(await store.importDuplicates('source.db', 7), 2, 'what the source counted since');
      assert.equal((await store.counts()).duplicates, 9);
    });
  });

  describe(`the operational store on ${name}: alerts`, () => {
    it('keeps whether the cab is told: the cab gets only driver alerts, the fleet team all', async () => {
      const store = await open();
      await raise(store, testAlert('truck-1'), testAlert('truck-2', { driver: false }));
      assert.deepEqual(ids(await store.deliveries.undelivered('driver', true)), [`truck-1.hot.${T}`]);
      assert.equal((await store.deliveries.undelivered('webhook', false)).length, 2);
      assert.equal((await store.getAlert(`truck-2.hot.${T}`))!.driver, false);
    });

    it("gives an alert back with the contract's fields, then its lifecycle, in the order the API shows them", async () => {
      const store = await open();
      await raise(store, testAlert('truck-1'));
      assert.deepEqual(Object.entries((await store.getAlert(`truck-1.hot.${T}`))!), [
        ...Object.entries(testAlert('truck-1')),
        ['state', 'active'],
        ['ackedBy', null],
        ['ackedAt', null],
        ['clearedBy', null],
        ['clearedAt', null],
        ['clearReason', null],
        ['driverSentAt', null],
      ]);
    });

    it('applies raised, promoted and cleared once each, with one change each, in order', async () => {
      const store = await open();
      const a = testAlert('truck-1', { live: false });
      const raised = await raise(store, a);
      assert.deepEqual(raised.changed, [a.id]);
      assert.deepEqual((await raise(store, a)).changed, [], 'raised again (a replay): nothing changes');
      const promoted = { ...a, live: true, observed: 120, windowEnd: T + 20_000, closedAt: T + 20_000 };
      await events(store, [{ kind: 'promoted', alert: promoted }], T + 1);
      const clear: AlertEvent = { kind: 'cleared', alertId: a.id, vehicle: 'truck-1', rule: 'hot', at: T + 60_000, reason: 'recovered' };
      await events(store, [clear], T + 2);
      assert.deepEqual((await events(store, [clear], T + 3)).changed, []);
      const stored = (await store.getAlert(a.id))!;
      assert.deepEqual(
        [stored.live, stored.observed, stored.state, stored.clearedBy, stored.clearReason],
        [true, 120, 'cleared', 'detector', 'recovered'],
      );
      const feed = await store.changesAfter(0);
      assert.deepEqual(
        feed.map((c) => c.kind),
        ['raised', 'promoted', 'cleared'],
      );
      assert.ok(feed.every((c, i) => i === 0 || c.id > feed[i - 1]!.id));
      assert.equal(await store.lastChangeId(), feed.at(-1)!.id);
      assert.deepEqual(await store.changesAfter(feed[1]!.id), [feed[2]]);
      assert.deepEqual(await store.openAlerts(['truck-1']), []);
    });

    it('moves the lifecycle only forward: acknowledged, then cleared by a person; counts every alert by state', async () => {
      const store = await open();
      await raise(store, ...['a', 'b', 'c'].map((v) => testAlert(v)));
      const acked = await store.acknowledge(`b.hot.${T}`, 'alice', T + 1);
      assert.deepEqual([acked?.state, acked?.ackedBy, acked?.ackedAt], ['acknowledged', 'alice', T + 1]);
      assert.equal((await store.acknowledge(`b.hot.${T}`, 'bob', T + 2))?.ackedBy, 'alice', 'acknowledged once');
      const cleared = await store.clear(`c.hot.${T}`, 'bob', T + 3);
      assert.deepEqual([cleared?.state, cleared?.clearedBy, cleared?.clearReason], ['cleared', 'bob', null]);
      assert.equal(await store.acknowledge('no-such-alert', 'alice', T), undefined);
      assert.deepEqual(await store.alertCountsByState(), { active: 1, acknowledged: 1, cleared: 1 });
      assert.deepEqual(await store.activeAlertsByVehicle(), new Map([['a', 1]]));
      assert.equal((await store.listAlerts({ limit: 1 })).length, 1);
      assert.deepEqual(ids(await store.listAlerts({ state: 'acknowledged' })), [`b.hot.${T}`]);
      assert.deepEqual(ids(await store.listAlerts({ vehicle: 'a', severity: 'critical' })), [`a.hot.${T}`]);
      assert.deepEqual(ids(await store.openAlerts(['a', 'b', 'c'])).sort(), [`a.hot.${T}`, `b.hot.${T}`]);
      assert.deepEqual(await changes(store), [`acknowledged b.hot.${T}`, `cleared c.hot.${T}`]);
    });
  });

  describe(`the delivery ledger on ${name}`, () => {
    it('offers every channel each alert, the cab only live driver alerts not cleared, oldest first', async () => {
      const a = testAlert('truck-1');
      const b = testAlert('truck-2', { raisedAt: T + 1 });
      const past = testAlert('truck-3', { live: false });
      const health = testAlert('truck-4', { driver: false });
      const cleared = testAlert('truck-5');
      const store = await open();
      await raise(store, b, a, past, health, cleared);
      await store.clear(cleared.id, 'alice', T + 5);
      const { deliveries } = store;
      assert.deepEqual(ids(await deliveries.undelivered('driver', true)), [a.id, b.id]);
      assert.deepEqual(ids(await deliveries.undelivered('webhook', false)).sort(), [a.id, b.id, past.id, health.id, cleared.id].sort());
    });

    it("a claim takes an alert off the channel's list once; a released one comes back", async () => {
      const a = testAlert('truck-1');
      const store = await open();
      await raise(store, a);
      const { deliveries } = store;
      assert.equal(await deliveries.claim(a.id, 'webhook', T + 1), true);
      assert.equal(await deliveries.claim(a.id, 'webhook', T + 2), false, 'claimed twice');
      assert.deepEqual(await deliveries.undelivered('webhook', false), []);
      assert.deepEqual(ids(await deliveries.undelivered('sns', false)), [a.id], 'a claim is per channel');
      await deliveries.release(a.id, 'webhook');
      assert.deepEqual(ids(await deliveries.undelivered('webhook', false)), [a.id]);
    });

    it('pending → sent → acknowledged for a receiver that acknowledges; each step an alert change', async () => {
      const a = testAlert('truck-1');
      const store = await open();
      await raise(store, a);
      const { deliveries } = store;
      await deliveries.claim(a.id, 'driver', T + 1);
      assert.equal((await store.getAlert(a.id))!.driverSentAt, null, 'not sent while only claimed');
      assert.equal(await deliveries.sent(a.id, 'driver', T + 2, true), true);
      assert.deepEqual(ids(await deliveries.awaitingAck('driver')), [a.id]);
      assert.equal((await store.getAlert(a.id))!.driverSentAt, T + 2);
      assert.equal(await deliveries.acknowledged(a.id, 'driver', T + 3), true);
      assert.equal(await deliveries.acknowledged(a.id, 'driver', T + 4), false, 'a repeated acknowledgement changes nothing');
      assert.deepEqual(await deliveries.awaitingAck('driver'), []);
      assert.equal((await store.getAlert(a.id))!.driverSentAt, T + 3);
      assert.deepEqual(await changes(store), [`sent:driver ${a.id}`, `delivered:driver ${a.id}`]);
    });

    it('a channel whose receiver does not acknowledge is done when sent: the change says delivered', async () => {
      const a = testAlert('truck-1');
      const store = await open();
      await raise(store, a);
      const { deliveries } = store;
      await deliveries.claim(a.id, 'webhook', T + 1);
      assert.equal(await deliveries.sent(a.id, 'webhook', T + 2, false), true);
      assert.equal(await deliveries.sent(a.id, 'webhook', T + 3, false), false, 'recorded once');
      assert.deepEqual(await deliveries.undelivered('webhook', false), []);
      assert.deepEqual(await changes(store), [`delivered:webhook ${a.id}`]);
    });

    it('sent → expired when never acknowledged; a late acknowledgement still says the cab has it', async () => {
      const a = testAlert('truck-1');
      const store = await open();
      await raise(store, a);
      const { deliveries } = store;
      await deliveries.claim(a.id, 'driver', T + 1);
      await deliveries.sent(a.id, 'driver', T + 2, true);
      assert.equal(await deliveries.expired(a.id, 'driver', T + 60_000), true);
      assert.equal(await deliveries.expired(a.id, 'driver', T + 60_001), false, 'recorded once');
      assert.deepEqual(await deliveries.awaitingAck('driver'), []);
      assert.equal((await store.getAlert(a.id))!.driverSentAt, null, 'expired: the cab never had it');
      assert.equal(await deliveries.acknowledged(a.id, 'driver', T + 61_000), true);
      assert.equal((await store.getAlert(a.id))!.driverSentAt, T + 61_000);
      assert.deepEqual(await changes(store), [`sent:driver ${a.id}`, `expired:driver ${a.id}`, `delivered:driver ${a.id}`]);
    });

    it('an alert stale before it was ever sent is recorded as expired and offered no more', async () => {
      const a = testAlert('truck-1');
      const store = await open();
      await raise(store, a);
      const { deliveries } = store;
      assert.equal(await deliveries.expired(a.id, 'driver', T + 120_000), true);
      assert.deepEqual(await deliveries.undelivered('driver', true), []);
      assert.equal(await deliveries.claim(a.id, 'driver', T + 120_001), false, 'never claimed after it expired');
    });

    it('across a restart: a claim without an outcome is in doubt, a sent alert still awaits its acknowledgement', async () => {
      const location = await newLocation();
      const a = testAlert('truck-1');
      const b = testAlert('truck-2');
      const before = await open(location);
      await raise(before, a, b);
      await before.deliveries.claim(a.id, 'webhook', T + 1);
      await before.deliveries.claim(b.id, 'driver', T + 1);
      await before.deliveries.sent(b.id, 'driver', T + 2, true);
      await before.close();

      const after = await open(location);
      assert.deepEqual(await after.deliveries.inDoubt('webhook'), [a.id]);
      assert.deepEqual(await after.deliveries.inDoubt('driver'), []);
      assert.deepEqual(ids(await after.deliveries.awaitingAck('driver')), [b.id]);
    });
  });

  describe(`console sessions on ${name}`, () => {
    it('keeps a session until it expires or is deleted, and drops the oldest beyond the limit', async () => {
      const store = await open();
      const { sessions } = store;
      await sessions.create('h1', { user: 'alice', expiresAt: T + 1000 }, T, 2);
      assert.deepEqual(await sessions.get('h1', T), { user: 'alice', expiresAt: T + 1000 });
      assert.equal(await sessions.get('h1', T + 1000), undefined, 'expired');
      await sessions.create('h2', { user: 'bob', expiresAt: T + 2000 }, T, 2);
      await sessions.create('h3', { user: 'carol', expiresAt: T + 3000 }, T, 2);
      assert.equal(await sessions.get('h1', T), undefined, 'the oldest went to make room');
      assert.equal((await sessions.get('h2', T))?.user, 'bob');
      await sessions.delete('h2');
      assert.equal(await sessions.get('h2', T), undefined);
      assert.equal((await sessions.get('h3', T))?.user, 'carol');
    });
  });
}

/** Stores readings as the detector would, for tests that fill a store before the part under test reads it. */
/** Latest rows as `vehicle sensor` → seq. */
export const latestSeqs = (rows: LatestRow[]) => Object.fromEntries(rows.map((r) => [`${r.vehicle} ${r.sensor}`, r.seq]));

export const storeReadings = (store: FleetStore, readings: Reading[], receivedAt: number) =>
  store.write({ received: [{ readings, receivedAt }], duplicates: 0, events: [], at: receivedAt });

/** Applies alert events as the detector would. */
export const storeAlertEvents = (store: FleetStore, list: AlertEvent[], at: number) =>
  store.write({ received: [], duplicates: 0, events: list, at });
