import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { correctWeekRollover, DATE_FLOOR_MS, WEEK_ROLLOVER_MS } from '../../../hardware/gps/week-rollover.js';

describe('correctWeekRollover', () => {
  it('takes 1024 weeks as 19.6 years, the rollovers of 1999 and 2019 among them', () => {
    const gpsEpoch = Date.UTC(1980, 0, 6);
    assert.equal(gpsEpoch + WEEK_ROLLOVER_MS, Date.UTC(1999, 7, 22));
    assert.equal(gpsEpoch + 2 * WEEK_ROLLOVER_MS, Date.UTC(2019, 3, 7));
  });

  it('leaves a date on or after the floor as it is', () => {
    const now = Date.parse('2026-11-30T01:28:06Z');
    assert.deepEqual(correctWeekRollover(now), { utcMs: now, weeks: 0 });
    assert.deepEqual(correctWeekRollover(DATE_FLOOR_MS), { utcMs: DATE_FLOOR_MS, weeks: 0 });
  });

  it('moves a date before the floor forward by 1024 weeks, as often as it takes', () => {
    const now = Date.parse('2026-11-30T01:28:06Z');
    // A receiver past its rollover says 2007.
    assert.deepEqual(correctWeekRollover(now - WEEK_ROLLOVER_MS), { utcMs: now, weeks: 1024 });
    assert.equal(new Date(now - WEEK_ROLLOVER_MS).getUTCFullYear(), 2007);
    // One built before 1999 is two rollovers behind.
    assert.deepEqual(correctWeekRollover(now - 2 * WEEK_ROLLOVER_MS), { utcMs: now, weeks: 2048 });
    // A day before the floor is a day before the floor plus 19.6 years, not today.
    assert.deepEqual(correctWeekRollover(DATE_FLOOR_MS - 86_400_000), {
      utcMs: DATE_FLOOR_MS - 86_400_000 + WEEK_ROLLOVER_MS,
      weeks: 1024,
    });
  });

  it('takes its floor as a parameter, for a build that raises it', () => {
    const floor = Date.UTC(2040, 0, 1);
    assert.deepEqual(correctWeekRollover(Date.UTC(2021, 5, 1), floor), { utcMs: Date.UTC(2021, 5, 1) + WEEK_ROLLOVER_MS, weeks: 1024 });
  });
});
