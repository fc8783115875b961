/**
 * The archive's columns, in file order, with their Parquet types: one row per reading. `ts`
 * and `received_at` are UTC timestamps in milliseconds; position columns are null for
 * readings without a position. Documented for users in docs/ARCHIVE.md.
 */
export const ARCHIVE_COLUMNS = [
  ['vehicle', 'VARCHAR'],
  ['seq', 'BIGINT'],
  ['ts', 'TIMESTAMP_MS'],
  ['sensor', 'VARCHAR'],
  ['value', 'DOUBLE'],
  ['quality', 'VARCHAR'],
  ['clock', 'VARCHAR'],
  ['lat', 'DOUBLE'],
  ['lon', 'DOUBLE'],
  ['heading', 'DOUBLE'],
  ['fix', 'VARCHAR'],
  ['received_at', 'TIMESTAMP_MS'],
] as const;
