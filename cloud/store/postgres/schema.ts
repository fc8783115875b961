import type { Reading } from '../../../shared/contract/reading.js';
import { importLatestSql } from '../import-sql.js';
import { ALERT_COLUMNS } from '../stored-alert.js';

/**
 * The operational store's schema in PostgreSQL, one step per release that changed it; the
 * version reached is kept in `schema_version` (see migrate.ts). Steps are only ever appended.
 *
 * Readings are partitioned by day of their event time (`ts`), not of their receive time: a
 * reading sent twice carries the same event time, so both copies fall in the same partition,
 * where the key (vehicle, seq, ts) drops the second; a partitioned table's unique key must
 * hold the partition column, and the receive time differs between the copies. The console's
 * charts and tracks ask for event-time ranges too, so they read one or two partitions, and
 * retention drops whole days of event time (partitions.ts).
 */
export const PG_MIGRATIONS: string[] = [
  `CREATE TABLE readings (
     vehicle text NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL, sensor text NOT NULL, value double precision NOT NULL,
     quality text NOT NULL, clock text NOT NULL, lat double precision, lon double precision, heading double precision, fix text,
     received_at bigint NOT NULL,
     PRIMARY KEY (vehicle, seq, ts)) PARTITION BY RANGE (ts);
   CREATE INDEX readings_by_time ON readings (vehicle, sensor, ts);
   -- Readings stored per day of event time, in slots so that detectors in several processes
   -- never wait on one another's counter row; a day's rows go with its partition.
   CREATE TABLE reading_counts (day bigint NOT NULL, slot integer NOT NULL, n bigint NOT NULL, PRIMARY KEY (day, slot));
   CREATE TABLE latest (
     vehicle text NOT NULL, sensor text NOT NULL, seq bigint NOT NULL, ts bigint NOT NULL, value double precision NOT NULL,
     lat double precision, lon double precision, heading double precision, PRIMARY KEY (vehicle, sensor));
   CREATE TABLE alerts (
     id text PRIMARY KEY, vehicle text NOT NULL, rule text NOT NULL, severity text NOT NULL, sensor text NOT NULL,
     episode_start bigint NOT NULL, window_start bigint NOT NULL, window_end bigint NOT NULL,
     observed double precision NOT NULL, expected double precision NOT NULL, message text NOT NULL, live boolean NOT NULL,
     driver boolean NOT NULL DEFAULT true, raised_at bigint NOT NULL, closed_at bigint NOT NULL, state text NOT NULL DEFAULT 'active',
     acked_by text, acked_at bigint, cleared_by text, cleared_at bigint, clear_reason text);
   CREATE INDEX alerts_by_time ON alerts (raised_at);
   CREATE INDEX alerts_open ON alerts (vehicle) WHERE state != 'cleared';
   CREATE TABLE alert_changes (id bigserial PRIMARY KEY, alert_id text NOT NULL, kind text NOT NULL, at bigint NOT NULL);
   -- The delivery ledger (delivery-table.ts); here because alert rows show the driver's delivery.
   CREATE TABLE deliveries (
     alert_id text NOT NULL, channel text NOT NULL, state text NOT NULL, at bigint NOT NULL, PRIMARY KEY (alert_id, channel));
   CREATE TABLE counters (name text PRIMARY KEY, value bigint NOT NULL);
   -- Console sessions, shared by every console on the database; kept by a hash of the cookie's id.
   CREATE TABLE sessions (id_hash text PRIMARY KEY, "user" text NOT NULL, expires_at bigint NOT NULL);
   CREATE INDEX sessions_by_expiry ON sessions (expires_at);`,
  // A latest value's version is the id of the transaction that last moved it (LATEST_VERSION),
  // so a console reads only the values that moved since its last look; values already here are 0.
  `ALTER TABLE latest ADD COLUMN version bigint NOT NULL DEFAULT 0;
   CREATE INDEX latest_by_version ON latest (version);`,
];

/**
 * The version a write gives the latest values it moves: its transaction's id (64 bits, never
 * wrapping). Versions from a sequence would commit out of order (a writer that drew n may commit
 * after one that drew n + 1, so a reader past n + 1 would miss n), and drawing them under the
 * change-feed lock would make every detector's write wait on every other's. Transaction ids
 * come with a rule instead: every transaction below a snapshot's xmin has ended, so a reader
 * that reads versions from the previous read's xmin on (LATEST_SINCE) sees each change at least
 * once, in whatever order the writers commit. What writers still open at the last read had
 * moved comes again; a long transaction that writes, anywhere on the server, holds the cursor
 * back until it ends: reads grow meanwhile, and nothing is missed.
 */
const LATEST_VERSION = 'pg_current_xact_id()::text::bigint';

/**
 * Advisory lock keys, one per kind of work that must not run twice at once across processes.
 * `changes` is held from a change's id being drawn until its transaction commits: change ids
 * then become visible in order, so a console that has seen id n never misses a smaller one
 * that commits later.
 */
export const LOCKS = { migrate: 4_611_001, partitions: 4_611_002, changes: 4_611_003, retention: 4_611_004 } as const;

const MS_PER_DAY = 86_400_000;

/**
 * One step's readings as arrays (one per column, in the table's order) into `readings`,
 * repeats of a stored (vehicle, seq, ts) skipped; the new ones move `latest` and the day's
 * count in the writer's slot ($13). Answers how many were new.
 */
export const INSERT_READINGS = `WITH input AS (
    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::double precision[], $6::text[], $7::text[],
      $8::double precision[], $9::double precision[], $10::double precision[], $11::text[], $12::bigint[])
      AS t(vehicle, seq, ts, sensor, value, quality, clock, lat, lon, heading, fix, received_at)),
  ins AS (INSERT INTO readings SELECT * FROM input ON CONFLICT DO NOTHING RETURNING vehicle, sensor, seq, ts, value, lat, lon, heading),
  newest AS (SELECT DISTINCT ON (vehicle, sensor) * FROM ins ORDER BY vehicle, sensor, seq DESC),
  moved AS (INSERT INTO latest SELECT *, ${LATEST_VERSION} FROM newest ON CONFLICT (vehicle, sensor) DO UPDATE SET seq = excluded.seq,
      ts = excluded.ts, value = excluded.value, lat = excluded.lat, lon = excluded.lon, heading = excluded.heading,
      version = excluded.version WHERE excluded.seq > latest.seq),
  counted AS (INSERT INTO reading_counts (day, slot, n) SELECT ts - ts % ${MS_PER_DAY}, $13, count(*) FROM ins GROUP BY 1
      ON CONFLICT (day, slot) DO UPDATE SET n = reading_counts.n + excluded.n)
  SELECT count(*)::integer AS stored FROM ins`;

/** One latest value from another store (FleetStore.importLatest), versioned as a write. */
export const IMPORT_LATEST = importLatestSql((n) => `$${n}`, LATEST_VERSION);

/**
 * Latest values of version $1 or later, each row with the cursor for the next read: the xmin
 * of this statement's snapshot, below which every writer has ended (see LATEST_VERSION).
 */
export const LATEST_SINCE = `WITH s AS MATERIALIZED (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS cursor)
  SELECT vehicle, sensor, seq, ts, value, lat, lon, heading, s.cursor FROM latest, s WHERE version >= $1`;

/** Of these (vehicle, seq, ts) keys, those stored already. */
export const STORED_KEYS = `SELECT r.vehicle, r.seq FROM readings r
  JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(vehicle, seq, ts) ON r.vehicle = k.vehicle AND r.seq = k.seq AND r.ts = k.ts`;

export const ADD_COUNTER = `INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value`;

export const LOCK_CHANGES = `SELECT pg_advisory_xact_lock(${LOCKS.changes})`;

/** Each alert event with its change row when it changed anything ($n: the change's time); answers the alert id if so. */
const withChange = (update: string, kind: string, at: string) =>
  `WITH a AS (${update} RETURNING id) INSERT INTO alert_changes (alert_id, kind, at) SELECT id, '${kind}', ${at} FROM a RETURNING alert_id`;

export const RAISE_ALERT = withChange(
  `INSERT INTO alerts (${ALERT_COLUMNS.join(', ')}) VALUES (${ALERT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING`,
  'raised',
  `$${ALERT_COLUMNS.length + 1}`,
);
export const PROMOTE_ALERT = withChange(
  'UPDATE alerts SET live = true, window_start = $2, window_end = $3, observed = $4, closed_at = $5 WHERE id = $1 AND NOT live',
  'promoted',
  '$6',
);
export const CLEAR_ALERT = withChange(
  `UPDATE alerts SET state = 'cleared', cleared_by = $2, cleared_at = $3, clear_reason = $4 WHERE id = $1 AND state != 'cleared'`,
  'cleared',
  '$5',
);
export const ACK_ALERT = withChange(
  `UPDATE alerts SET state = 'acknowledged', acked_by = $2, acked_at = $3 WHERE id = $1 AND state = 'active'`,
  'acknowledged',
  '$3',
);

/** The first millisecond of the day (UTC) that `ts` falls in: the partition it belongs to. */
export const dayOf = (ts: number) => Math.floor(ts / MS_PER_DAY) * MS_PER_DAY;

/** `readings_20261130`: a day's partition. */
export const partitionName = (day: number) => `readings_${new Date(day).toISOString().slice(0, 10).replaceAll('-', '')}`;

/** The partition of the day `ts` falls in, made unless it is there. */
export const partitionDdl = (ts: number) =>
  `CREATE TABLE IF NOT EXISTS ${partitionName(dayOf(ts))} PARTITION OF readings FOR VALUES FROM (${dayOf(ts)}) TO (${dayOf(ts) + MS_PER_DAY})`;

/** Partitions with the first day each holds. */
export const PARTITIONS = `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
  WHERE i.inhparent = 'readings'::regclass`;

/** INSERT_READINGS' first twelve parameters: the readings column by column. */
export function readingColumns(received: { reading: Reading; receivedAt: number }[]): unknown[][] {
  const columns: unknown[][] = Array.from({ length: 12 }, () => []);
  for (const { reading: r, receivedAt } of received) {
    const p = r.position;
    const row = [r.vehicle, r.seq, r.ts, r.sensor, r.value, r.quality, r.clock, p?.lat, p?.lon, p?.heading, p?.fix, receivedAt];
    row.forEach((v, i) => columns[i]!.push(v ?? null));
  }
  return columns;
}
