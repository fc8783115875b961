import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { FleetStore } from '../../../cloud/store.js';
import type { Alert } from '../../../shared/contract/alert.js';
import { tempDir } from '../../support/harness.js';

const T = Date.UTC(2026, 0, 5, 10);

function alert(vehicle: string, over: Partial<Alert> = {}): Alert {
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

/** A store file with these alerts raised; the ledger is the one the dispatcher is given. */
function storeWith(path: string, ...alerts: Alert[]): FleetStore {
  const store = new FleetStore(path);
  store.applyAlertEvents(
    alerts.map((a) => ({ kind: 'raised' as const, alert: a })),
    T,
  );
  return store;
}

const ids = (alerts: { id: string }[]) => alerts.map((a) => a.id);
const changes = (store: FleetStore) =>
  store
    .changesAfter(0)
    .filter((c) => c.kind !== 'raised')
    .map((c) => `${c.kind} ${c.alertId}`);

describe('the delivery ledger, on a real SQLite file', () => {
  it('offers every channel each alert, the cab only live driver alerts not cleared, oldest first', () => {
    const a = alert('truck-1');
    const b = alert('truck-2', { raisedAt: T + 1 });
    const past = alert('truck-3', { live: false });
    const health = alert('truck-4', { driver: false });
    const cleared = alert('truck-5');
    const store = storeWith(join(tempDir(), 'fleet.db'), b, a, past, health, cleared);
    store.clear(cleared.id, 'alice', T + 5);
    const { deliveries } = store;
    assert.deepEqual(ids(deliveries.undelivered('driver', true)), [a.id, b.id]);
    assert.deepEqual(ids(deliveries.undelivered('webhook', false)).sort(), [a.id, b.id, past.id, health.id, cleared.id].sort());
    store.close();
  });

  it("a claim takes an alert off the channel's list once; a released one comes back", () => {
    const a = alert('truck-1');
    const store = storeWith(join(tempDir(), 'fleet.db'), a);
    const { deliveries } = store;
    assert.equal(deliveries.claim(a.id, 'webhook', T + 1), true);
    assert.equal(deliveries.claim(a.id, 'webhook', T + 2), false, 'claimed twice');
    assert.deepEqual(deliveries.undelivered('webhook', false), []);
    assert.deepEqual(ids(deliveries.undelivered('sns', false)), [a.id], 'a claim is per channel');
    deliveries.release(a.id, 'webhook');
    assert.deepEqual(ids(deliveries.undelivered('webhook', false)), [a.id]);
    store.close();
  });

  it('pending → sent → acknowledged for a receiver that acknowledges; each step an alert change', () => {
    const a = alert('truck-1');
    const store = storeWith(join(tempDir(), 'fleet.db'), a);
    const { deliveries } = store;
    deliveries.claim(a.id, 'driver', T + 1);
    assert.equal(store.getAlert(a.id)!.driverSentAt, null, 'not sent while only claimed');
    assert.equal(deliveries.sent(a.id, 'driver', T + 2, true), true);
    assert.deepEqual(ids(deliveries.awaitingAck('driver')), [a.id]);
    assert.equal(store.getAlert(a.id)!.driverSentAt, T + 2);
    assert.equal(deliveries.acknowledged(a.id, 'driver', T + 3), true);
    assert.equal(deliveries.acknowledged(a.id, 'driver', T + 4), false, 'a repeated acknowledgement changes nothing');
    assert.deepEqual(deliveries.awaitingAck('driver'), []);
    assert.equal(store.getAlert(a.id)!.driverSentAt, T + 3);
    assert.deepEqual(changes(store), [`sent:driver ${a.id}`, `delivered:driver ${a.id}`]);
    store.close();
  });

  it('a channel whose receiver does not acknowledge is done when sent: the change says delivered', () => {
    const a = alert('truck-1');
    const store = storeWith(join(tempDir(), 'fleet.db'), a);
    const { deliveries } = store;
    deliveries.claim(a.id, 'webhook', T + 1);
    assert.equal(deliveries.sent(a.id, 'webhook', T + 2, false), true);
    assert.equal(deliveries.sent(a.id, 'webhook', T + 3, false), false, 'recorded once');
    assert.deepEqual(deliveries.undelivered('webhook', false), []);
    assert.deepEqual(changes(store), [`delivered:webhook ${a.id}`]);
    store.close();
  });

  it('sent → expired when never acknowledged; a late acknowledgement still says the cab has it', () => {
    const a = alert('truck-1');
    const store = storeWith(join(tempDir(), 'fleet.db'), a);
    const { deliveries } = store;
    deliveries.claim(a.id, 'driver', T + 1);
    deliveries.sent(a.id, 'driver', T + 2, true);
    assert.equal(deliveries.expired(a.id, 'driver', T + 60_000), true);
    assert.equal(deliveries.expired(a.id, 'driver', T + 60_001), false, 'recorded once');
    assert.deepEqual(deliveries.awaitingAck('driver'), []);
    assert.equal(store.getAlert(a.id)!.driverSentAt, null, 'expired: the cab never had it');
    assert.equal(deliveries.acknowledged(a.id, 'driver', T + 61_000), true);
    assert.equal(store.getAlert(a.id)!.driverSentAt, T + 61_000);
    assert.deepEqual(changes(store), [`sent:driver ${a.id}`, `expired:driver ${a.id}`, `delivered:driver ${a.id}`]);
    store.close();
  });

  it('an alert stale before it was ever sent is recorded as expired and offered no more', () => {
    const a = alert('truck-1');
    const store = storeWith(join(tempDir(), 'fleet.db'), a);
    const { deliveries } = store;
    assert.equal(deliveries.expired(a.id, 'driver', T + 120_000), true);
    assert.deepEqual(deliveries.undelivered('driver', true), []);
    assert.equal(deliveries.claim(a.id, 'driver', T + 120_001), false, 'never claimed after it expired');
    store.close();
  });

  it('across a restart: a claim without an outcome is in doubt, a sent alert still awaits its acknowledgement', () => {
    const path = join(tempDir(), 'fleet.db');
    const a = alert('truck-1');
    const b = alert('truck-2');
    const before = storeWith(path, a, b);
    before.deliveries.claim(a.id, 'webhook', T + 1);
    before.deliveries.claim(b.id, 'driver', T + 1);
    before.deliveries.sent(b.id, 'driver', T + 2, true);
    before.close();

    const after = new FleetStore(path);
    assert.deepEqual(after.deliveries.inDoubt('webhook'), [a.id]);
    assert.deepEqual(after.deliveries.inDoubt('driver'), []);
    assert.deepEqual(ids(after.deliveries.awaitingAck('driver')), [b.id]);
    after.close();
  });
});
