import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

export type Synchronous = 'FULL' | 'NORMAL';

/**
 * Every SQLite file here is opened the same way: WAL, so a reader in another process
 * (console, detector) never blocks the writer; a busy timeout, so two writers wait rather
 * than fail; and `synchronous` chosen by what a commit promises: FULL where an
 * acknowledgement follows the commit (it must survive a power cut), NORMAL where a crash
 * may only lose work that will be redone. A new file is readable by its owner only (SQLite
 * gives its -wal and -shm files the same mode): it holds vehicles' positions and readings.
 */
export function openDatabase(path: string, synchronous: Synchronous): Database.Database {
  // 'a' creates the file if missing and leaves an existing one (and its mode) as it is; an empty file is an empty database.
  closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  return db;
}

/**
 * Brings a database's schema up to date: migration i (0-based) takes it from version i to
 * i + 1, and `user_version` records where it stands, so each runs once, in order, in one
 * transaction with the version bump. Migrations are only ever appended.
 */
export function migrate(db: Database.Database, migrations: readonly string[]): void {
  const at = db.pragma('user_version', { simple: true }) as number;
  if (at > migrations.length) throw new Error(`${db.name} has schema version ${at}, newer than this release knows (${migrations.length}); upgrade before opening it`);
  for (let v = at; v < migrations.length; v++) {
    db.transaction(() => {
      db.exec(migrations[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
