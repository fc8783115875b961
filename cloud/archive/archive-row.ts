/**
 * The archive's columns, in file order, with their DuckDB types: one row per reading. `ts`
 * and `received_at` are instants (Parquet timestamps adjusted to UTC, whole milliseconds
 * stored in microsecond units: DuckDB writes the UTC flag only for TIMESTAMPTZ, whose unit
 * is the microsecond); position columns are null for readings without a position.
 * Documented for users in docs/ARCHIVE.md.
 */
export const ARCHIVE_COLUMNS = [
  ['vehicle', 'VARCHAR'],
  ['seq', 'BIGINT'],
  ['ts', 'TIMESTAMPTZ'],
  ['sensor', 'VARCHAR'],
  ['value', 'DOUBLE'],
  ['quality', 'VARCHAR'],
  ['clock', 'VARCHAR'],
  ['lat', 'DOUBLE'],
  ['lon', 'DOUBLE'],
  ['heading', 'DOUBLE'],
  ['fix', 'VARCHAR'],
  ['received_at', 'TIMESTAMPTZ'],
] as const;
