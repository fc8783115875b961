import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import { openDatabase, type Migration, type Synchronous } from '../shared/sqlite.js';
import { SENSOR_CATALOGUE, sensorSpec, type Reading, type SensorId } from '../shared/contract/reading.js';
import { quantize } from '../shared/contract/codec.js';
import { MIN_TS } from '../shared/contract/validate.js';
import type { StampedSample, Sync } from './device-clock.js';

/** Approximate bytes a buffered reading costs on disk (row + index entries), used for the cap. */
const ROW_BYTES = { scalar: 64, gps: 96 } as const;
const rowBytes = (sensor: SensorId) => (sensor === 'gps' ? ROW_BYTES.gps : ROW_BYTES.scalar);

/**
 * The buffer's schema, one step per release that changed it (see shared/sqlite.ts). The first
 * adopts a file made before versions were kept, in either shape such files have: agents from
 * before clock correction wrote readings without `mono` and `boot` (their readings keep their
 * times). Every later change is a step of its own.
 */
const BUFFER_MIGRATIONS: Migration[] = [
  (db) => {
    db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS readings (
        seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, clock TEXT NOT NULL, sensor TEXT NOT NULL,
        value REAL NOT NULL, quality TEXT NOT NULL, priority INTEGER NOT NULL,
        lat REAL, lon REAL, heading REAL, fix TEXT);
      CREATE INDEX IF NOT EXISTS readings_by_priority ON readings (priority, seq);
      CREATE TABLE IF NOT EXISTS alerts_shown (id TEXT PRIMARY KEY, shown_at INTEGER NOT NULL) WITHOUT ROWID;`);
    const columns = (db.prepare('PRAGMA table_info(readings)').all() as { name: string }[]).map((c) => c.name);
    if (!columns.includes('mono')) db.exec('ALTER TABLE readings ADD COLUMN mono REAL; ALTER TABLE readings ADD COLUMN boot TEXT;');
    // Unsynced readings are few and short-lived: a partial index finds them without touching the rest.
    db.exec('CREATE INDEX IF NOT EXISTS readings_unsynced ON readings (seq) WHERE mono IS NOT NULL');
  },
  // The buffer's size is kept in meta with every write, so opening a backlog of a million
  // readings reads two values instead of counting them (a third of a second on a Pi's card).
  (db) => {
    let readings = 0;
    let bytes = 0;
    for (const row of db.prepare('SELECT sensor, count(*) AS n FROM readings GROUP BY sensor').all() as { sensor: SensorId; n: number }[]) {
      readings += row.n;
      bytes += row.n * rowBytes(row.sensor);
    }
    const set = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    set.run('readings', readings);
    set.run('bytes', bytes);
  },
];

export interface BufferOptions {
  path: string;
  vehicle: string;
  maxBytes: number;
  /** SQLite `synchronous`: FULL survives a power cut after commit; NORMAL only a crash. */
  synchronous: Synchronous;
}

export interface BufferStats {
  readings: number;
  bytes: number;
  evicted: number;
  nextSeq: number;
}

export interface ClockCorrection {
  /** Readings of this boot given UTC from their monotonic time. */
  corrected: number;
  /** Readings of earlier boots stamped before 2001, given an estimate that keeps their spacing; still `unsynced`. */
  estimated: number;
}

/** What the buffer keeps in memory about its file; it must change only when a write commits. */
interface BufferState {
  nextSeq: number;
  bytes: number;
  count: number;
  evicted: number;
  /** Ranges the gateway acknowledged whose delete has not committed yet (a full disk refuses deletes too). */
  undeleted: [number, number][];
}

/**
 * The agent's durable buffer. A reading exists here before it exists anywhere else, and
 * leaves only when the gateway acknowledged it or when the byte cap evicts it (counted).
 * A write that fails (a full disk) changes nothing, in the file or in memory, so the same
 * samples can be appended again later under the same seqs.
 */
export class ReadingBuffer {
  private readonly db: Database.Database;
  private state: BufferState;
  /** Readings at or below this seq are in flight and must not be evicted. */
  protectedUpTo = 0;
  private readonly insert: Database.Statement;
  private readonly selectAfter: Database.Statement;
  private readonly firstHeld: Database.Statement;
  private readonly newest: Database.Statement;
  private readonly deleteRange: Database.Statement;
  private readonly upsertMeta: Database.Statement;

  constructor(private readonly opts: BufferOptions) {
    mkdirSync(dirname(opts.path), { recursive: true, mode: 0o750 });
    this.db = openDatabase(opts.path, opts.synchronous, BUFFER_MIGRATIONS);
    // The buffer is written at its end and read in order: SQLite's 2 MB default page cache does,
    // while better-sqlite3's 16 MB would fill up on the first scan and stay in a Pi's RSS.
    this.db.pragma('cache_size = -2000');
    this.upsertMeta = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
    this.deleteRange = this.db.prepare('DELETE FROM readings WHERE seq BETWEEN ? AND ? RETURNING sensor');
    const owner = this.meta('vehicle');
    if (owner === undefined) this.setMeta('vehicle', opts.vehicle);
    else if (owner !== opts.vehicle) {
      throw new Error(
        `buffer ${opts.path} belongs to vehicle ${typeof owner === 'string' ? owner : JSON.stringify(owner)}, not ${opts.vehicle}; use another data directory`,
      );
    }
    const maxSeq = (this.db.prepare('SELECT max(seq) AS m FROM readings').get() as { m: number | null }).m ?? 0;
    this.state = {
      nextSeq: Math.max(Number(this.meta('next_seq') ?? 1), maxSeq + 1),
      bytes: Number(this.meta('bytes')),
      count: Number(this.meta('readings')),
      evicted: Number(this.meta('evicted') ?? 0),
      undeleted: [],
    };
    this.insert = this.db.prepare(
      `INSERT INTO readings (seq, ts, clock, sensor, value, quality, priority, lat, lon, heading, fix, mono, boot)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.selectAfter = this.db.prepare('SELECT * FROM readings WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?');
    this.firstHeld = this.db.prepare('SELECT min(seq) AS seq FROM readings WHERE mono IS NOT NULL AND ts < ?').pluck();
    // Asked once per batch sent: prepared once.
    this.newest = this.db.prepare('SELECT ts FROM readings WHERE ts >= ? ORDER BY seq DESC LIMIT 1').pluck();
  }

  /**
   * Commits samples in one transaction and gives each its seq; returns the stored readings.
   * Acknowledged ranges whose delete failed earlier are deleted first, in the same
   * transaction, so their pages are reused. Throws what SQLite throws (SQLITE_FULL ...),
   * having changed nothing.
   */
  append(samples: StampedSample[]): Reading[] {
    if (samples.length === 0 && this.state.undeleted.length === 0) return [];
    return this.write(() => {
      this.deleteAcknowledged();
      const out: Reading[] = [];
      for (const { unsynced, ...s } of samples) {
        const r: Reading = { ...s, vehicle: this.opts.vehicle, seq: this.state.nextSeq++, value: quantize(s.value) };
        const p = r.position;
        this.insert.run(
          r.seq,
          r.ts,
          r.clock,
          r.sensor,
          r.value,
          r.quality,
          sensorSpec(r.sensor).priority,
          p?.lat ?? null,
          p?.lon ?? null,
          p?.heading ?? null,
          p?.fix ?? null,
          unsynced?.mono ?? null,
          unsynced?.boot ?? null,
        );
        this.state.bytes += rowBytes(r.sensor);
        this.state.count++;
        out.push(r);
      }
      this.setMeta('next_seq', this.state.nextSeq);
      if (this.state.bytes > this.opts.maxBytes) this.evict();
      return out;
    });
  }

  /**
   * The oldest readings after `afterSeq`, in seq order: the next batch to send. It stops
   * before the first reading still waiting for a clock sync, since sending later ones first
   * would break the order: one stamped before 2001 always waits (no receiver would take
   * it), any unsynced one while `holdUnsynced`.
   */
  after(afterSeq: number, limit: number, holdUnsynced = false): Reading[] {
    const held = (this.firstHeld.get(holdUnsynced ? Number.MAX_SAFE_INTEGER : MIN_TS) as number | null) ?? Number.MAX_SAFE_INTEGER;
    return (this.selectAfter.all(afterSeq, held, limit) as Row[]).map((row) => toReading(this.opts.vehicle, row));
  }

  /**
   * Gives the readings taken before the clock synced their place in UTC, in one transaction.
   * This boot's are exact up to the monotonic clock's drift and become `synced`. Earlier
   * boots' monotonic clocks started from zero at an unknown UTC; of those, readings with an
   * impossible time are placed just before the later boot began, keeping their spacing, and
   * stay `unsynced` so consumers know the time is an estimate.
   */
  correctClock(sync: Sync): ClockCorrection {
    return this.db.transaction((): ClockCorrection => {
      const corrected = this.db
        .prepare(
          "UPDATE readings SET ts = CAST(round(mono + ?) AS INTEGER), clock = 'synced', mono = NULL, boot = NULL WHERE mono IS NOT NULL AND boot = ?",
        )
        .run(sync.offsetMs, sync.boot).changes;
      const boots = this.db
        .prepare('SELECT boot, max(mono) AS lastMono FROM readings WHERE mono IS NOT NULL GROUP BY boot ORDER BY max(seq) DESC')
        .all() as { boot: string; lastMono: number }[];
      const implausible = this.db.prepare('SELECT count(*) FROM readings WHERE boot = ? AND ts < ?').pluck();
      const place = this.db.prepare(
        'UPDATE readings SET ts = CASE WHEN ts < ? THEN CAST(round(? - (? - mono)) AS INTEGER) ELSE ts END, mono = NULL, boot = NULL WHERE boot = ?',
      );
      let estimated = 0;
      // Newest boot first: each ends just before the boot after it began, and began at least its last reading's monotonic time before that.
      let endUtc = sync.offsetMs - 1;
      for (const b of boots) {
        estimated += implausible.get(b.boot, MIN_TS) as number;
        place.run(MIN_TS, endUtc, b.lastMono, b.boot);
        endUtc -= b.lastMono + 1;
      }
      return { corrected, estimated };
    })();
  }

  /**
   * Forgets readings the gateway acknowledged (a seq range: gaps in it were evicted). When
   * the delete fails it throws, but the range is remembered and deleted by a later
   * acknowledge or append; until then its readings still count as buffered. Returns how
   * many readings were deleted (those of earlier failed ranges included).
   */
  acknowledge(firstSeq: number, lastSeq: number): number {
    this.state.undeleted.push([firstSeq, lastSeq]);
    return this.write(() => this.deleteAcknowledged());
  }

  /**
   * Folds the WAL into the database file and truncates it, the only way the WAL shrinks: it
   * grows to ~4 MB between automatic checkpoints, while the database may need a fraction of
   * that. Throws as a write does when the disk refuses. The buffer has no other readers, so
   * TRUNCATE, which waits for readers, does not wait.
   */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Newest committed event time: tells the cloud how far behind a backlog is. */
  newestTs(): number | undefined {
    // One held back for its impossible time would make the batch's headTs impossible too.
    return this.newest.get(MIN_TS) as number | undefined;
  }

  /** Records an alert as shown; false if it was shown before (also before a restart). */
  markAlertShown(id: string, at: number): boolean {
    return this.db.prepare('INSERT OR IGNORE INTO alerts_shown (id, shown_at) VALUES (?, ?)').run(id, at).changes === 1;
  }

  stats(): BufferStats {
    const { count, bytes, evicted, nextSeq } = this.state;
    return { readings: count, bytes, evicted, nextSeq };
  }

  close(): void {
    this.db.close();
  }

  /**
   * Drops the lowest-priority, oldest readings until the buffer fits again, never one
   * in flight. Runs inside append's transaction so the cap holds at every commit.
   */
  private evict(): void {
    const pick = this.db.prepare(
      'DELETE FROM readings WHERE seq IN (SELECT seq FROM readings WHERE priority = ? AND seq > ? ORDER BY seq LIMIT ?) RETURNING sensor',
    );
    const priorities = [...new Set(SENSOR_CATALOGUE.map((s) => s.priority))].sort((a, b) => a - b);
    const { state } = this;
    for (const priority of priorities) {
      while (state.bytes > this.opts.maxBytes) {
        // Rows of this class may be smaller than the excess per row assumed here; the loop takes more if so.
        const excess = Math.ceil((state.bytes - this.opts.maxBytes) / ROW_BYTES.gps);
        const rows = pick.all(priority, this.protectedUpTo, excess) as { sensor: SensorId }[];
        if (rows.length === 0) break;
        this.forget(rows);
        state.evicted += rows.length;
      }
    }
    this.setMeta('evicted', state.evicted);
  }

  private deleteAcknowledged(): number {
    let deleted = 0;
    for (const [first, last] of this.state.undeleted) deleted += this.forget(this.deleteRange.all(first, last) as { sensor: SensorId }[]);
    this.state.undeleted = [];
    return deleted;
  }

  private forget(rows: { sensor: SensorId }[]): number {
    for (const r of rows) this.state.bytes -= rowBytes(r.sensor);
    this.state.count -= rows.length;
    return rows.length;
  }

  /**
   * Runs `body` in one transaction, with the buffer's size as it leaves it. If it fails, SQLite
   * rolls the file back and this puts the in-memory state back to match: no seq is skipped, no
   * count drifts from the file.
   */
  private write<T>(body: () => T): T {
    const saved = this.state;
    this.state = { ...saved };
    try {
      return this.db.transaction(() => {
        const result = body();
        if (this.state.count !== saved.count || this.state.bytes !== saved.bytes) {
          this.setMeta('readings', this.state.count);
          this.setMeta('bytes', this.state.bytes);
        }
        return result;
      })();
    } catch (err) {
      this.state = saved;
      throw err;
    }
  }

  private meta(key: string): unknown {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: unknown } | undefined)?.value;
  }

  private setMeta(key: string, value: unknown): void {
    this.upsertMeta.run(key, value);
  }
}

interface Row {
  seq: number;
  ts: number;
  clock: Reading['clock'];
  sensor: SensorId;
  value: number;
  quality: Reading['quality'];
  lat: number | null;
  lon: number | null;
  heading: number | null;
  fix: 'none' | '2d' | '3d' | null;
}

function toReading(vehicle: string, row: Row): Reading {
  const r: Reading = { vehicle, seq: row.seq, ts: row.ts, clock: row.clock, sensor: row.sensor, value: row.value, quality: row.quality };
  if (row.sensor === 'gps') r.position = { lat: row.lat!, lon: row.lon!, heading: row.heading!, fix: row.fix! };
  return r;
}
