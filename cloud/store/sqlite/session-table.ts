import type Database from 'better-sqlite3';
import type { SessionTable, StoredSession } from '../../store.js';

/** The consoles' sessions in the store file, so every console reading it accepts the same cookie. */
export class SqliteSessionTable implements SessionTable {
  private readonly st;

  constructor(private readonly db: Database.Database) {
    this.st = {
      insert: db.prepare('INSERT OR REPLACE INTO sessions (id_hash, user, expires_at) VALUES (?, ?, ?)'),
      get: db.prepare('SELECT user, expires_at AS expiresAt FROM sessions WHERE id_hash = ? AND expires_at > ?'),
      delete: db.prepare('DELETE FROM sessions WHERE id_hash = ?'),
      expire: db.prepare('DELETE FROM sessions WHERE expires_at <= ?'),
      // Oldest first: a flood of sign-ins pushes out the earliest sessions, not the disk.
      cap: db.prepare(`DELETE FROM sessions WHERE id_hash IN
        (SELECT id_hash FROM sessions ORDER BY expires_at LIMIT max(0, (SELECT count(*) FROM sessions) - ?))`),
    };
  }

  async create(idHash: string, session: StoredSession, now: number, max: number): Promise<void> {
    this.db.transaction(() => {
      this.st.expire.run(now);
      this.st.cap.run(max - 1);
      this.st.insert.run(idHash, session.user, session.expiresAt);
    })();
  }

  async get(idHash: string, now: number): Promise<StoredSession | undefined> {
    return this.st.get.get(idHash, now) as StoredSession | undefined;
  }

  async delete(idHash: string): Promise<void> {
    this.st.delete.run(idHash);
  }
}
