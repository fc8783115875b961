import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { storeIdentity } from '../../../bin/commands/store.js';
import { copyStore } from '../../../cloud/store/copy-store.js';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import type { Reading } from '../../../shared/contract/reading.js';
import { hotAlert } from '../../support/alert-fixtures.js';
import { tempDir } from '../../support/harness.js';
import { storeAlertEvents, storeReadings } from '../../support/store-contract.js';

const T = Date.UTC(2026, 0, 5, 10);
const reading = (vehicle: string, seq: number): Reading => ({
  vehicle,
  seq,
  ts: T + seq,
  clock: 'synced',
  sensor: 'engine_temp',
  value: seq,
  quality: 'good',
});

describe('copying one store into another', () => {
  it('pages through everything, even a row at a time, and a second copy adds nothing', async () => {
    const dir = tempDir();
    const from = new SqliteStore(join(dir, 'from.db'));
    const to = new SqliteStore(join(dir, 'to.db'));
    await storeReadings(from, [reading('a', 1), reading('a', 2), reading('b', 1)], T);
    await storeAlertEvents(from, [{ kind: 'raised', alert: hotAlert('a') }], T);
    await from.clear(hotAlert('a').id, 'alice', T + 1);
    await from.deliveries.claim(hotAlert('a').id, 'webhook', T + 2);
    await from.write({ received: [], duplicates: 4, events: [], at: T });
    const seen: number[] = [];
    const first = await copyStore(from, to, { source: 'from.db', pageRows: 1, onReadings: (done, total) => seen.push(done, total) });
    assert.deepEqual(first, {
      readings: { seen: 3, stored: 3 },
      latest: 2,
      alerts: 1,
      deliveries: 1,
      changes: { seen: 2, appended: 2 },
      duplicatesAdded: 4,
    });
    assert.deepEqual(seen, [1, 3, 2, 3, 3, 3], 'progress after each page, of the whole');
    const again = await copyStore(from, to, { source: 'from.db', pageRows: 2 });
    assert.deepEqual(again, { ...first, readings: { seen: 3, stored: 0 }, changes: { seen: 2, appended: 0 }, duplicatesAdded: 0 });
    assert.deepEqual(await to.counts(), { readingsStored: 3, duplicates: 4 });
    assert.deepEqual(await to.readingsPage(undefined, 10), await from.readingsPage(undefined, 10));
    assert.deepEqual(await to.getAlert(hotAlert('a').id), await from.getAlert(hotAlert('a').id));
    assert.deepEqual(await to.changesAfter(0), await from.changesAfter(0));
    await from.close();
    await to.close();
  });

  it('names a file source by its absolute path and a database by its URL without the password', () => {
    assert.equal(storeIdentity('var/cloud/../cloud/fleet.db'), join(process.cwd(), 'var', 'cloud', 'fleet.db'));
    assert.equal(storeIdentity('postgres://fleet:secret@db:5432/fleet'), 'postgres://fleet:***@db:5432/fleet');
  });
});
