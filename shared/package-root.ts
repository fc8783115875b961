import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The project's own folder, found by walking up to its package.json. Modules run both from
 * their TypeScript sources (tests) and compiled under dist/ (the CLI), so a fixed number of
 * `../` would be right in only one of the two.
 */
function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && !dir.endsWith('/dist')) return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

const ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the project's source tree, such as files tsc does not copy into dist/. */
export const projectPath = (...segments: string[]): string => join(ROOT, ...segments);
