/**
 * GPS satellites send the week number in 10 bits, so it wraps every 1024 weeks (19.6 years:
 * 1999-08-22, 2019-04-07, 2038-11-21). A receiver's firmware decides which 1024-week era it is
 * in from a date built into it, and once that date is 19.6 years old it reports dates 1024
 * weeks back: 2007 for 2026.
 */
export const WEEK_ROLLOVER_MS = 1024 * 7 * 86_400_000;

/**
 * No receiver date before this can be right: this release was built after it. As gpsd does
 * with its build date, a date before it is taken to be 1024 weeks behind (or 2048 ...).
 * Raising it with each release keeps the correction right for 19.6 years after the release.
 */
export const DATE_FLOOR_MS = Date.UTC(2026, 0, 1);

/** A receiver's date moved forward by 1024 weeks as often as it lies before `floorMs`; `weeks` says by how much. */
export function correctWeekRollover(utcMs: number, floorMs = DATE_FLOOR_MS): { utcMs: number; weeks: number } {
  const rollovers = utcMs < floorMs ? Math.ceil((floorMs - utcMs) / WEEK_ROLLOVER_MS) : 0;
  return { utcMs: utcMs + rollovers * WEEK_ROLLOVER_MS, weeks: rollovers * 1024 };
}
