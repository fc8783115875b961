import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { SqliteStore } from '../../../cloud/store/sqlite/sqlite-store.js';
import { ALERT_FIELDS, parseAlert, wireAlert } from '../../../shared/contract/alert.js';
import { tempDir } from '../../support/harness.js';
import { ALERT_T, hotAlert } from '../../support/alert-fixtures.js';

const T = ALERT_T;
const ALERT = hotAlert('truck-1', { driver: false });

describe("the alert's forms, all derived from the contract's", () => {
  it("travels with the contract's fields, in their order, and nothing of the store's lifecycle", () => {
    const stored = { ...ALERT, state: 'acknowledged', ackedBy: 'alice', ackedAt: T + 20_000, driverSentAt: null };
    assert.deepEqual(Object.keys(wireAlert(stored)), ALERT_FIELDS);
    assert.deepEqual(wireAlert(stored), ALERT);
    const { driver: _absent, ...withoutDriver } = ALERT;
    assert.deepEqual(
      Object.keys(wireAlert(withoutDriver)),
      ALERT_FIELDS.filter((f) => f !== 'driver'),
      'an absent field stays absent',
    );
  });

  it('is read back from the wire as the contract has it, whatever else the sender added', () => {
    assert.deepEqual(parseAlert(JSON.stringify({ ...ALERT, state: 'active', note: 'not ours' })), ALERT);
  });

  it('is stored and given to the cab, webhooks and SNS as the detector raised it', async () => {
    const store = new SqliteStore(join(tempDir(), 'fleet.db'));
    await store.write({ received: [], duplicates: 0, events: [{ kind: 'raised', alert: ALERT }], at: T });
    const stored = (await store.getAlert(ALERT.id))!;
    assert.equal(JSON.stringify(wireAlert(stored)), JSON.stringify(ALERT));
    assert.deepEqual(Object.keys(stored).slice(0, ALERT_FIELDS.length), ALERT_FIELDS);
    await store.close();
  });
});
