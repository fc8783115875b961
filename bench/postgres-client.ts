/**
 * node-postgres (`pg`) beside porsager's `postgres`, on the detector's write path, against one
 * real PostgreSQL (test/support/postgres.ts) in the same run.
 *
 * Each transaction is what a detector step writes (cloud/store/postgres/): 1,000 readings of
 * 100 vehicles (one in ten a repeat of a stored one) inserted with dedupe, the latest values
 * and the day's count moved, the duplicates counted, one alert raised with its change row
 * under the change-feed lock. The statements are the store's own, run through each client
 * as the client runs them best: `pg` one after the other on a pooled connection, `postgres`
 * pipelined in one `begin`. Each client gets a fresh database, untimed warm-up transactions,
 * then the timed ones; the clients alternate over the runs and each one's best run counts.
 *
 * stdout: one JSON line per figure; stderr: progress.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import postgres from 'postgres';
import {
  ADD_COUNTER,
  INSERT_READINGS,
  LOCK_CHANGES,
  PG_MIGRATIONS,
  RAISE_ALERT,
  readingColumns,
  partitionDdl,
} from '../cloud/store/postgres/schema.js';
import { alertValues } from '../cloud/store/stored-alert.js';
import { projectPath } from '../shared/package-root.js';
import type { Alert } from '../shared/contract/alert.js';
import type { Reading } from '../shared/contract/reading.js';
import { startPostgres } from '../test/support/postgres.js';
import { emit, round, runPart, truckReadings } from './support.js';

const USAGE = `Usage: node dist/bench/postgres-client.js [--quick] [--help]

Transactions/s and readings/s of the detector's write path into PostgreSQL through pg and
through postgres (porsager), on one PostgreSQL started here (Debian's, scripts/services/postgres.sh).
`;

const VEHICLES = 100;
const PER_VEHICLE = 10;
const T0 = Date.UTC(2026, 10, 2, 8);

interface Client {
  name: string;
  version: string;
  /** One transaction of the statements, in order. */
  transaction(statements: [string, unknown[]][]): Promise<void>;
  close(): Promise<void>;
}

function pgClient(url: string): Client {
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  return {
    name: 'pg',
    version: packageVersion('pg'),
    async transaction(statements) {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        for (const [text, values] of statements) await c.query(text, values);
        await c.query('COMMIT');
      } catch (err) {
        await c.query('ROLLBACK');
        throw err;
      } finally {
        c.release();
      }
    },
    close: () => pool.end(),
  };
}

function porsagerClient(url: string): Client {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  return {
    name: 'postgres',
    version: packageVersion('postgres'),
    async transaction(statements) {
      // Not awaited one by one: the client pipelines a transaction's statements.
      await sql.begin((tx) => statements.map(([text, values]) => tx.unsafe(text, values as postgres.ParameterOrJSON<never>[])));
    },
    close: () => sql.end(),
  };
}

function packageVersion(name: string): string {
  return (JSON.parse(readFileSync(projectPath('node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The statements of step `i`: its readings (a tenth repeating step i - 1's), the repeats counted, one alert. */
function step(i: number, seqs: Int32Array): { statements: [string, unknown[]][]; readings: number } {
  const readings: Reading[] = [];
  for (let v = 0; v < VEHICLES; v++) {
    const vehicle = `truck-${v}`;
    const fresh = truckReadings(vehicle, PER_VEHICLE, T0 + i * 1000, v);
    fresh.forEach((r, k) => (r.seq = seqs[v]! + k + 1));
    // A vehicle in ten resends its previous batch: dropped by the key.
    if (v % 10 === 0 && i > 0) fresh.forEach((r, k) => ((r.seq = seqs[v]! - PER_VEHICLE + k + 1), (r.ts = T0 + (i - 1) * 1000)));
    else seqs[v]! += PER_VEHICLE;
    readings.push(...fresh);
  }
  const alert: Alert = {
    id: `truck-1.hot.${T0 + i}`,
    vehicle: 'truck-1',
    rule: 'hot',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart: T0 + i,
    windowStart: T0 + i,
    windowEnd: T0 + i + 10_000,
    observed: 110,
    expected: 105,
    message: 'hot',
    live: true,
    raisedAt: T0 + i,
    closedAt: T0 + i,
  };
  return {
    readings: readings.length,
    statements: [
      [INSERT_READINGS, [...readingColumns(readings.map((reading) => ({ reading, receivedAt: T0 + i * 1000 }))), 0]],
      [ADD_COUNTER, ['duplicates', VEHICLES / 10]],
      [LOCK_CHANGES, []],
      [RAISE_ALERT, [...alertValues(alert), T0 + i]],
    ],
  };
}

async function measure(client: Client, transactions: number, warmup: number) {
  const seqs = new Int32Array(VEHICLES);
  for (let i = 0; i < warmup; i++) await client.transaction(step(i, seqs).statements);
  const steps = Array.from({ length: transactions }, (_, i) => step(warmup + i, seqs));
  const started = performance.now();
  for (const s of steps) await client.transaction(s.statements);
  const seconds = (performance.now() - started) / 1000;
  return { txPerSec: transactions / seconds, readingsPerSec: steps.reduce((n, s) => n + s.readings, 0) / seconds };
}

runPart(
  'postgres-client',
  USAGE,
  // A client's run is 2 to 3 minutes on a loaded 2-core machine, most of it making the readings and the database.
  (quick) => (quick ? 300_000 : 1_200_000),
  async (o, log) => {
    const server = await startPostgres();
    const transactions = o.quick ? 100 : 500;
    const runs = o.quick ? 1 : 3;
    const best = new Map<string, { txPerSec: number; readingsPerSec: number; version: string }>();
    try {
      for (let run = 0; run < runs; run++) {
        const order = run % 2 === 0 ? [pgClient, porsagerClient] : [porsagerClient, pgClient];
        for (const make of order) {
          const url = await server.createDatabase();
          const admin = new pg.Client({ connectionString: url });
          await admin.connect();
          for (const m of PG_MIGRATIONS) await admin.query(m);
          for (let day = -1; day <= 1; day++) await admin.query(partitionDdl(T0 + day * 86_400_000));
          await admin.end();
          const client = make(url);
          try {
            const r = await measure(client, transactions, 20);
            log(`run ${run + 1}, ${client.name}: ${Math.round(r.readingsPerSec)} readings/s, ${round(r.txPerSec, 1)} transactions/s`);
            if (r.readingsPerSec > (best.get(client.name)?.readingsPerSec ?? 0)) best.set(client.name, { ...r, version: client.version });
          } finally {
            await client.close();
          }
        }
      }
    } finally {
      await server.stop();
    }
    const inUse = best.get('pg')!;
    const other = best.get('postgres')!;
    const note = `${VEHICLES} vehicles x ${PER_VEHICLE} readings per transaction (a tenth repeats), one alert with its change; ${transactions} transactions, best of ${runs}`;
    emit('postgres-client', {
      figure: `detector write path, readings/s, pg (in use)`,
      value: Math.round(inUse.readingsPerSec),
      unit: 'readings/s',
      peer: 'postgres (porsager)',
      peerValue: Math.round(other.readingsPerSec),
      note,
    });
    emit('postgres-client', {
      figure: `detector write path, transactions/s, pg (in use)`,
      value: round(inUse.txPerSec, 1),
      unit: 'transactions/s',
      peer: 'postgres (porsager)',
      peerValue: round(other.txPerSec, 1),
      note,
    });
  },
);
