import { once } from 'node:events';
import { Command } from 'commander';
import { z } from 'zod';
import { archiveUrlSetting, defaultArchiveUrl, QUERY_CACHE_DIR } from '../../cloud/archive/archive-location.js';
import { openReadingsView, runQuery, type ReadingsView } from '../../cloud/archive/archive-query.js';
import { formatResult, QUERY_FORMATS } from '../../cloud/archive/query-output.js';
import { flagsFrom, runCommand, withFlags } from '../cli-support.js';

const day = () =>
  z
    .string()
    .regex(/^\d{4}-\d{2}-\d{2}$/, 'expected a day as YYYY-MM-DD')
    .refine((d) => {
      const t = Date.parse(`${d}T00:00:00Z`);
      return !Number.isNaN(t) && new Date(t).toISOString().startsWith(d);
    }, 'no such day')
    .meta({ arg: 'YYYY-MM-DD' });

export const queryConfigSchema = z
  .object({
    archive: archiveUrlSetting()
      .default(defaultArchiveUrl())
      .describe('the archive: file:///dir, or s3://bucket/prefix with endpoint, region and credentials from the AWS environment'),
    cache: z
      .string()
      .min(1)
      .default(QUERY_CACHE_DIR)
      .meta({ description: "where a bucket's objects are kept to be queried; unchanged ones are not fetched again", arg: 'dir' }),
    from: day().optional().describe('first day (UTC) of the dt= partitions fetched and seen'),
    to: day().optional().describe('last day (UTC) of the dt= partitions fetched and seen'),
    format: z.enum(QUERY_FORMATS).default('table').describe('output: aligned table, RFC 4180 CSV, or JSON with one object per line'),
  })
  .strict()
  .refine((c) => c.from === undefined || c.to === undefined || c.from <= c.to, { message: 'must not be after --to', path: ['from'] });

const EXAMPLE = `
The archive is the view readings: the columns of docs/ARCHIVE.md, plus dt (DATE) and hour
(INTEGER) from the partition path. Timestamps are UTC.

Example: the hourly maximum cargo temperature of one truck in one month
  fleet query --from 2026-01-01 --to 2026-01-31 "
    SELECT date_trunc('hour', ts) AS hour, max(value) AS max_cargo_temp
    FROM readings
    WHERE vehicle = 'truck-007' AND sensor = 'container_temp'
    GROUP BY 1 ORDER BY 1"

Exit status: 0 on success, 1 when the query or the archive fails, 2 on bad flags.`;

export function queryCommand(): Command {
  const cmd = new Command('query')
    .description('run SQL over the archive (Parquet in a directory or an S3 bucket) with DuckDB')
    .argument('<sql>', 'the SQL to run (several statements: the last one is printed)')
    .addHelpText('after', EXAMPLE);
  return (
    withFlags(cmd, queryConfigSchema)
      // A bare switch rather than a [true|false] setting, which would take the SQL after it as its value.
      .option('--progress', 'report fetch and query progress on stderr even when it is not a terminal')
      .action((sql: string, { progress, ...flags }: Record<string, unknown>) =>
        runCommand(async () => {
          const s = flagsFrom(queryConfigSchema, flags);
          const watch = progress === true || process.stderr.isTTY;
          const status = statusLine(process.stderr.isTTY);
          let view: ReadingsView;
          try {
            view = await openReadingsView({
              archive: s.archive,
              cacheDir: s.cache,
              range: { from: s.from, to: s.to },
              onFetch: (p) => {
                const line = `fetched ${p.fetched} of ${p.objects - p.cached} objects (${mb(p.bytesFetched)}), ${p.cached} already cached`;
                if (p.fetched + p.cached === p.objects) status.done(line);
                else if (watch) status.update(line);
              },
            });
          } catch (err) {
            return fail(`reading ${s.archive}: ${(err as Error).message}`);
          }
          if (view.note) process.stderr.write(`fleet query: ${view.note}\n`);
          try {
            const result = await runQuery(
              view.connection,
              sql,
              watch
                ? (p) => status.update(`query ${p.percentage < 0 ? '…' : `${p.percentage.toFixed(0)}%`}, ${p.rowsProcessed} rows read`)
                : undefined,
            );
            status.clear();
            for await (const line of formatResult(result, s.format)) {
              if (!process.stdout.write(line)) await once(process.stdout, 'drain');
            }
          } catch (err) {
            status.clear();
            return fail((err as Error).message);
          }
        }),
      )
  );
}

function fail(message: string): void {
  process.stderr.write(`fleet query: ${message}\n`);
  process.exitCode = 1;
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;

/** Progress on stderr: rewritten in place on a terminal, one line per update elsewhere. */
function statusLine(tty: boolean) {
  let shown = false;
  return {
    update(text: string) {
      process.stderr.write(tty ? `\r\x1b[2K${text}` : `${text}\n`);
      shown = tty;
    },
    /** A line that stays, whether or not progress was shown. */
    done(text: string) {
      process.stderr.write(tty ? `\r\x1b[2K${text}\n` : `${text}\n`);
      shown = false;
    },
    clear() {
      if (shown) process.stderr.write('\r\x1b[2K');
      shown = false;
    },
  };
}
