import Database from 'better-sqlite3';

/**
 * Rows of a query on a SQLite file a part of the system writes, through a read-only
 * connection of the test's own: a test looks at what was stored without reaching into the
 * module that owns the file.
 */
export function queryFile<T>(path: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** The first column of the first row of a query on a SQLite file, read-only (see queryFile). */
export function queryValue<T>(path: string, sql: string, ...params: unknown[]): T | undefined {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(sql)
      .pluck()
      .get(...params) as T | undefined;
  } finally {
    db.close();
  }
}
