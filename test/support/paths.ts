import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's root (the directory with package.json), found from this file whether it
 * runs from its source (the tests, under vitest) or from dist/ (the benchmarks).
 */
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
/** The built CLI, as users run it: tests that start processes need `npm run build` first (npm test does it). */
export const FLEET_BIN = join(ROOT, 'dist', 'bin', 'fleet.js');
/** Real device captures shipped beside the checkout. */
export const SHARED_DATA = join(ROOT, '..', 'shared', 'data');
