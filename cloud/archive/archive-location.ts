import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { DATA_DIRS } from '../../shared/defaults.js';
import { archiveUrlProblem } from './open-archive-store.js';

/** The embedded archive, in the cloud's data directory beside the store (relative to the working directory). */
export const ARCHIVE_DIR = join(DATA_DIRS.cloud, 'archive');

/** Where `fleet query` keeps the objects it fetched from a bucket, so a second query fetches only what changed. */
export const QUERY_CACHE_DIR = join(DATA_DIRS.cloud, 'archive-cache');

/** The default of `fleet archiver --to` and `fleet query --archive`: the embedded archive as a file URL. */
export function defaultArchiveUrl(cwd = process.cwd()): string {
  return pathToFileURL(resolve(cwd, ARCHIVE_DIR)).href;
}

/** An archive URL setting, checked as a URL before anything opens it. */
export const archiveUrlSetting = () =>
  z
    .string()
    .superRefine((url, ctx) => {
      const problem = archiveUrlProblem(url);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ arg: 'url', defaultText: `file://$PWD/${ARCHIVE_DIR}` });
