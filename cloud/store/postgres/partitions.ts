import type pg from 'pg';
import { inTransaction } from './connection.js';
import { dayOf, LOCKS, partitionDdl, partitionName, PARTITIONS } from './schema.js';

const MS_PER_DAY = 86_400_000;

/**
 * The readings' day partitions: made before a write needs them (the day of each reading, and
 * the day after, so midnight finds its partition there), and dropped whole by retention.
 * Known days are remembered; another process dropping one is noticed when an insert finds no
 * partition, and `forget` makes the next write look again.
 */
export class Partitions {
  private readonly known = new Set<number>();

  constructor(private readonly pool: pg.Pool) {}

  async ensure(timestamps: Iterable<number>): Promise<void> {
    const days = new Set<number>();
    for (const ts of timestamps) for (const day of [dayOf(ts), dayOf(ts) + MS_PER_DAY]) if (!this.known.has(day)) days.add(day);
    if (days.size === 0) return;
    // One process at a time: two making the same partition at once would collide in the catalogue.
    await inTransaction(this.pool, async (c) => {
      await c.query(`SELECT pg_advisory_xact_lock(${LOCKS.partitions})`);
      for (const day of days) await c.query(partitionDdl(day));
    });
    for (const day of days) this.known.add(day);
  }

  forget(): void {
    this.known.clear();
  }

  /**
   * Drops every partition whose whole day is before `before`, with its days' counts; returns
   * how many readings went. Skipped while another process does it.
   */
  async dropBefore(before: number): Promise<number> {
    return inTransaction(this.pool, async (c) => {
      const { rows } = await c.query<{ locked: boolean }>(`SELECT pg_try_advisory_xact_lock(${LOCKS.retention}) AS locked`);
      if (!rows[0]?.locked) return 0;
      const days = (await c.query<{ name: string }>(PARTITIONS)).rows
        .map((r) => dayOfPartition(r.name))
        .filter((day): day is number => day !== undefined && day + MS_PER_DAY <= before);
      if (days.length === 0) return 0;
      const counted = await c.query<{ n: number }>('SELECT coalesce(sum(n), 0)::bigint AS n FROM reading_counts WHERE day = ANY($1)', [
        days,
      ]);
      for (const day of days) await c.query(`DROP TABLE ${partitionName(day)}`);
      await c.query('DELETE FROM reading_counts WHERE day = ANY($1)', [days]);
      for (const day of days) this.known.delete(day);
      return counted.rows[0]?.n ?? 0;
    });
  }
}

/** `readings_20261130` → that day's first ms; undefined for a table not named so. */
function dayOfPartition(name: string): number | undefined {
  const m = /^readings_(\d{4})(\d{2})(\d{2})$/.exec(name);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : undefined;
}
