import type { Logger } from '../../shared/log.js';
import type { FleetStore } from '../store.js';
import { PgStore } from './postgres/pg-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** Whether the `store` setting names a PostgreSQL database rather than a SQLite file. */
const isPostgresUrl = (store: string) => /^postgres(ql)?:\/\//i.test(store);

/**
 * The store the `store` setting names: a `postgres://` URL, or else a SQLite file path.
 * Call `open()` on it before use.
 */
export function openStore(store: string, log?: Logger): FleetStore {
  return isPostgresUrl(store) ? new PgStore(store, log) : new SqliteStore(store);
}
