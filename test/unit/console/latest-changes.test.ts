import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { LatestChanges } from '../../../cloud/console/latest-changes.js';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import type { Reading } from '../../../shared/contract/reading.js';
import { tempDir } from '../../support/harness.js';
import { storeReadings } from '../../support/store-contract.js';

const T = Date.UTC(2026, 0, 5, 10);
const speed = (vehicle: string, seq: number, value: number): Reading => ({
  vehicle,
  seq,
  ts: T + seq,
  clock: 'synced',
  sensor: 'speed',
  value,
  quality: 'good',
});

describe("the console's latest values", () => {
  const store = new SqliteStore(join(tempDir(), 'fleet.db'));
  afterAll(() => store.close());

  it('gives every value at first, then only the vehicles whose values moved, then nothing', async () => {
    await storeReadings(store, [speed('a', 1, 10), speed('b', 1, 20)], T);
    const latest = new LatestChanges(store);
    assert.deepEqual(await latest.next(), [
      { id: 'a', values: { speed: { value: 10, ts: T + 1 } } },
      { id: 'b', values: { speed: { value: 20, ts: T + 1 } } },
    ]);
    await storeReadings(store, [speed('b', 2, 21)], T);
    assert.deepEqual(await latest.next(), [{ id: 'b', values: { speed: { value: 21, ts: T + 2 } } }]);
    assert.deepEqual(await latest.next(), []);
  });
});
