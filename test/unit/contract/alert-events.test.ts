import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { alertEventVehicle, decodeAlertEvent, encodeAlertEvent } from '../../../cloud/alerts/alert-events.js';
import type { AlertEvent } from '../../../shared/rules/engine.js';
import { ALERT_T, hotAlert } from '../../support/alert-fixtures.js';

const T = ALERT_T;
const ALERT = hotAlert();

describe('an alert event on fleet.alerts', () => {
  it('reads back as it was written, keyed by its vehicle, on any stream', () => {
    const events: AlertEvent[] = [
      { kind: 'raised', alert: ALERT },
      { kind: 'promoted', alert: { ...ALERT, live: false } },
      { kind: 'cleared', alertId: ALERT.id, vehicle: 'truck-1', rule: 'hot', at: T + 60_000, reason: 'recovered' },
    ];
    for (const e of events) {
      assert.deepEqual(decodeAlertEvent(encodeAlertEvent(e)), e);
      assert.deepEqual(decodeAlertEvent(Buffer.from(encodeAlertEvent(e))), e);
      assert.equal(alertEventVehicle(e), 'truck-1');
    }
  });

  it('is refused with what is wrong', () => {
    assert.throws(() => decodeAlertEvent('{'), /alert event is not valid JSON/);
    assert.throws(() => decodeAlertEvent('7'), /alert event must be a JSON object/);
    assert.throws(() => decodeAlertEvent('{"kind":"exploded"}'), /alert event kind: must be raised, promoted or cleared/);
    const cleared = { kind: 'cleared', alertId: ALERT.id, vehicle: 'truck-1', rule: 'hot', at: T, reason: 'recovered' };
    assert.throws(() => decodeAlertEvent(JSON.stringify({ ...cleared, at: -1 })), /alert event at: must be ms/);
    assert.throws(() => decodeAlertEvent(JSON.stringify({ ...cleared, alertId: '' })), /alert event alertId/);
    assert.throws(() => decodeAlertEvent(JSON.stringify({ ...cleared, reason: 'bored' })), /alert event reason/);
  });
});
