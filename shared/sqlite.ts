import { closeSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';

export type Synchronous = 'FULL' | 'NORMAL';

/**
 * One step of a database's schema: SQL, or a function for a step that must look at the file
 * first (one adopting files made before versions were kept, in whatever shape they are).
 */
export type Migration = string | ((db: Database.Database) => void);

/**
 * Every SQLite file here is opened the same way: WAL, so a reader in another process
 * (console, detector) never blocks the writer; a busy timeout, so two writers wait rather
 * than fail; and `synchronous` chosen by what a commit promises: FULL where an
 * acknowledgement follows the commit (it must survive a power cut; the gateway's stream gets
 * the same by syncing the WAL itself before it acknowledges, see shared/stream-log.ts), NORMAL
 * where a crash may only lose work that will be redone. A new file is readable by its owner only (SQLite
 * gives its -wal and -shm files the same mode): it holds vehicles' positions and readings.
 * The schema is brought up to date before anything else touches the file (see migrate()).
 */
export function openDatabase(path: string, synchronous: Synchronous, migrations: readonly Migration[]): Database.Database {
  // 'a' creates the file if missing and leaves an existing one (and its mode) as it is; an empty file is an empty database.
  closeSync(openSync(path, 'a', 0o600));
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('busy_timeout = 5000');
  try {
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Brings a database's schema up to date: migration i (0-based) takes it from version i to
 * i + 1, and `user_version` records where it stands, so each runs once, in order, in one
 * transaction with the version bump. Migrations are only ever appended. Several processes
 * open the same file (gateway and detectors, detector and console): each step re-reads the
 * version inside its write transaction, so a step another process just ran is not run again.
 */
function migrate(db: Database.Database, migrations: readonly Migration[]): void {
  const version = (): number => {
    const at = db.pragma('user_version', { simple: true }) as number;
    if (at > migrations.length)
      throw new Error(
        `${db.name} has schema version ${at}, newer than this release knows (${migrations.length}); upgrade before opening it`,
      );
    return at;
  };
  const step = db.transaction((): boolean => {
    const at = version();
    if (at === migrations.length) return false;
    const migration = migrations[at]!;
    if (typeof migration === 'string') db.exec(migration);
    else migration(db);
    db.pragma(`user_version = ${at + 1}`);
    return true;
  });
  // A current file (the usual case) is only read; a step takes the write lock.
  if (version() < migrations.length) while (step.immediate()) continue;
}
