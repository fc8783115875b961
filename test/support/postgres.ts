import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, tempDir, waitFor } from './harness.js';
import { ROOT } from './paths.js';

const POSTGRES_SH = join(ROOT, 'scripts', 'services', 'postgres.sh');
const READY_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 10_000;

export interface PostgresServer {
  port: number;
  /** A fresh, empty database on this server, as a store URL (`postgres://fleet@127.0.0.1:PORT/NAME`). */
  createDatabase(name?: string): Promise<string>;
  /** A fast shutdown (SIGINT: sessions are ended, work committed so far is kept); SIGKILL after 10 s. */
  stop(): Promise<void>;
  /** The same cluster again: same files, same port. */
  restart(): Promise<void>;
}

let databases = 0;

/**
 * A real PostgreSQL (Debian's, through scripts/services/postgres.sh) in a fresh temp dir: initdb
 * as an unprivileged user (nobody, when the tests run as root: PostgreSQL refuses root), a free
 * port on 127.0.0.1, its socket in the temp dir. Its log is postgres.log there.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const dir = tempDir('fleet-pg-');
  const run = promisify(execFile);
  await run('bash', [POSTGRES_SH, 'init', dir], { timeout: 120_000 });
  const port = await freePort();
  const admin = `postgres://fleet@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let gone = Promise.resolve();
  // A test that dies mid-way must not leave a server behind.
  process.on('exit', () => child?.kill('SIGKILL'));

  const launch = async () => {
    const log = openSync(join(dir, 'postgres.log'), 'a');
    const c = spawn('bash', [POSTGRES_SH, 'run', dir, String(port)], { stdio: ['ignore', log, log] });
    closeSync(log);
    child = c;
    gone = new Promise((resolve) => c.once('exit', () => resolve()));
    await waitFor(
      `PostgreSQL on 127.0.0.1:${port}`,
      async () => {
        if (c.exitCode !== null || c.signalCode !== null)
          throw new Error(`PostgreSQL exited (${c.exitCode ?? c.signalCode}); see ${join(dir, 'postgres.log')}:\n${tail(dir)}`);
        return query(admin, 'SELECT 1').then(
          () => true,
          () => false,
        );
      },
      READY_TIMEOUT_MS,
      100,
    );
  };

  await launch();
  return {
    port,
    async createDatabase(name = `fleet_${process.pid}_${++databases}`) {
      await query(admin, `CREATE DATABASE "${name}"`);
      return `postgres://fleet@127.0.0.1:${port}/${name}`;
    },
    async stop() {
      const c = child;
      if (!c) return;
      c.kill('SIGINT');
      const timer = setTimeout(() => c.kill('SIGKILL'), STOP_GRACE_MS);
      await gone;
      clearTimeout(timer);
      child = undefined;
    },
    async restart() {
      if (child) throw new Error('PostgreSQL is still running: stop() it first');
      await launch();
    },
  };
}

/** Rows of one statement on a database, through a connection of the test's own. */
export async function query<T>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

function tail(dir: string): string {
  return readFileSync(join(dir, 'postgres.log'), 'utf8').split('\n').slice(-20).join('\n');
}
