import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import type { FleetStore } from '../../cloud/store.js';
import { copyStore, type CopyReport } from '../../cloud/store/copy-store.js';
import { isPostgresUrl, openStore } from '../../cloud/store/open-store.js';
import { redacted } from '../../cloud/store/postgres/connection.js';
import { ConfigError, int } from '../../shared/config.js';
import { storeSetting } from '../../shared/settings.js';
import { flagsFrom, progressOnStderr, runCommand, withFlags } from '../cli-support.js';

export const storeCopyConfigSchema = z
  .object({
    from: storeSetting.meta({ description: 'the store to copy: a SQLite file or a postgres:// URL', arg: 'store' }),
    to: storeSetting.meta({
      description: 'the store to copy into: a SQLite file (made if missing) or a postgres:// URL; a detector may be writing to it',
      arg: 'store',
    }),
    pageRows: int().min(1).max(100_000).default(2000).describe('rows read and written per transaction (bounds the memory used)'),
  })
  .strict();

/** A store as a copy's marks in the target name it: a file by its absolute path, a database by its URL without password. */
export const storeIdentity = (store: string) => (isPostgresUrl(store) ? redacted(store) : resolve(store));

export function storeCommand(): Command {
  const cmd = new Command('store').description('work on an operational store (SQLite file or PostgreSQL database)');
  cmd.addCommand(
    withFlags(new Command('copy'), storeCopyConfigSchema)
      .description(
        'copy everything a store holds into another (SQLite into PostgreSQL when a setup grows): readings, latest values, alerts with their lifecycle, the delivery ledger, the change feed and the duplicates count. Run it again, or after it was stopped, and it copies only what is missing; nothing in the target moves backwards',
      )
      .action((flags: Record<string, unknown>) =>
        runCommand(async () => {
          const s = flagsFrom(storeCopyConfigSchema, flags);
          const source = storeIdentity(s.from);
          if (source === storeIdentity(s.to)) throw new ConfigError(`--from and --to are the same store (${source})`);
          if (!isPostgresUrl(s.from) && !existsSync(s.from)) throw new ConfigError(`--from ${s.from}: no such store file`);
          if (!isPostgresUrl(s.to) && !existsSync(dirname(s.to)))
            throw new ConfigError(`--to ${s.to}: its directory ${dirname(s.to)} does not exist`);
          const from = await opened('--from', s.from);
          const to = await opened('--to', s.to).catch(async (err: unknown) => {
            await from.close();
            throw err;
          });
          try {
            const progress = progressOnStderr('copied', 'readings');
            const report = await copyStore(from, to, { source, pageRows: s.pageRows, onReadings: progress.update });
            progress.end();
            process.stdout.write(summary(from.location, to.location, report));
          } finally {
            await to.close();
            await from.close();
          }
        }),
      ),
  );
  return cmd;
}

/** A store opened, or a clear reason it could not be (unreachable, not a store, a schema newer than this release). */
async function opened(flag: string, store: string): Promise<FleetStore> {
  let s: FleetStore | undefined;
  try {
    s = openStore(store);
    await s.open();
    return s;
  } catch (err) {
    await s?.close().catch(() => undefined);
    throw new ConfigError(`${flag}: ${(err as Error).message}`);
  }
}

function summary(from: string, to: string, r: CopyReport): string {
  return `${[
    `copied ${from} into ${to}:`,
    `  readings: ${r.readings.seen} in the source, ${r.readings.stored} new to the target`,
    '    (every reading whatever its age: the day partitions it needs are made; the detector',
    '    drops those past its readingsRetentionDays on its next round, as it would have here)',
    `  latest values: ${r.latest}`,
    `  alerts: ${r.alerts}, with their lifecycle`,
    `  deliveries: ${r.deliveries}`,
    `  alert changes: ${r.changes.seen} in the source, ${r.changes.appended} new to the target`,
    `  duplicates counted: ${r.duplicatesAdded} added`,
    '  console sessions are not copied: users sign in again on the new store',
  ].join('\n')}\n`;
}
