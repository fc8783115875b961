import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { ConfigError } from '../../shared/config.js';
import type { Logger } from '../../shared/log.js';
import type { FleetStore } from '../store.js';
import { PgStore } from './postgres/pg-store.js';
import { SqliteStore } from './sqlite/sqlite-store.js';

/** Whether the `store` setting names a PostgreSQL database rather than a SQLite file. */
export const isPostgresUrl = (store: string) => /^postgres(ql)?:\/\//i.test(store);

/**
 * The store the `store` setting names: a `postgres://` URL, or else a SQLite file path.
 * Call `open()` on it before use. A SQLite file is created when missing, but not its
 * directory: a console or dispatcher pointed at a detector's store that is not there yet
 * (a typo, or started first) is told so rather than given an empty store of its own.
 */
export function openStore(store: string, log?: Logger): FleetStore {
  if (isPostgresUrl(store)) return new PgStore(store, log);
  if (!existsSync(dirname(store)))
    throw new ConfigError(`store ${store}: its directory does not exist (start the detector first, which creates it, or check --store)`);
  return new SqliteStore(store);
}
