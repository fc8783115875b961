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
