/** The archive's data files: `dt=YYYY-MM-DD/hour=HH/<name>.parquet`, partitioned by event time (UTC). */
const DATA_KEY = /^dt=(\d{4}-\d{2}-\d{2})\/hour=\d{2}\/[^/]+\.parquet$/;

/** The glob of the data files under an archive's root; bookkeeping under `_fleet_archive/` never matches. */
export const DATA_GLOB = 'dt=*/hour=*/*.parquet';

/** A range of days (UTC), either end open; days are `YYYY-MM-DD`, which sort as they read. */
export interface DayRange {
  from?: string;
  to?: string;
}

/** The day of a data file's key, or undefined for anything else (bookkeeping, stray objects). */
export function dataKeyDay(key: string): string | undefined {
  return DATA_KEY.exec(key)?.[1];
}

export function inRange(day: string, range: DayRange): boolean {
  return (range.from === undefined || day >= range.from) && (range.to === undefined || day <= range.to);
}
