import type pg from 'pg';
import type { SessionTable, StoredSession } from '../../store.js';
import { inTransaction } from './connection.js';

const SQL = {
  expire: 'DELETE FROM sessions WHERE expires_at <= $1',
  // Oldest first: a flood of sign-ins pushes out the earliest sessions, not the disk.
  cap: `DELETE FROM sessions WHERE id_hash IN
    (SELECT id_hash FROM sessions ORDER BY expires_at LIMIT greatest(0, (SELECT count(*) FROM sessions) - $1))`,
  insert: `INSERT INTO sessions (id_hash, "user", expires_at) VALUES ($1, $2, $3)
    ON CONFLICT (id_hash) DO UPDATE SET "user" = excluded."user", expires_at = excluded.expires_at`,
  get: 'SELECT "user", expires_at AS "expiresAt" FROM sessions WHERE id_hash = $1 AND expires_at > $2',
  delete: 'DELETE FROM sessions WHERE id_hash = $1',
};

/** The consoles' sessions in the database, so every console behind one address accepts the same cookie. */
export class PgSessionTable implements SessionTable {
  constructor(private readonly pool: pg.Pool) {}

  async create(idHash: string, session: StoredSession, now: number, max: number): Promise<void> {
    await inTransaction(this.pool, async (c) => {
      await c.query(SQL.expire, [now]);
      await c.query(SQL.cap, [max - 1]);
      await c.query(SQL.insert, [idHash, session.user, session.expiresAt]);
    });
  }

  async get(idHash: string, now: number): Promise<StoredSession | undefined> {
    return (await this.pool.query<StoredSession>(SQL.get, [idHash, now])).rows[0];
  }

  async delete(idHash: string): Promise<void> {
    await this.pool.query(SQL.delete, [idHash]);
  }
}
