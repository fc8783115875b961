import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { projectPath } from '../../shared/package-root.js';
import { HttpError } from './http.js';

/** tsc copies no HTML, CSS or browser JS into dist/, so the compiled module serves them from the source tree. */
const WEB_DIR = projectPath('cloud', 'console', 'web');
const require = createRequire(import.meta.url);
/**
 * Third-party browser code comes from our own node_modules: depots often have no internet.
 * Maps, not object literals: a path segment such as `constructor` or `__proto__` must find
 * nothing rather than something inherited.
 */
const VENDOR_DIRS = new Map([
  ['leaflet', join(dirname(require.resolve('leaflet/package.json')), 'dist')],
  ['uplot', join(dirname(require.resolve('uplot/package.json')), 'dist')],
]);

const TYPES = new Map([
  ['.html', 'text/html; charset=utf-8'],
  ['.js', 'text/javascript; charset=utf-8'],
  ['.css', 'text/css; charset=utf-8'],
  ['.png', 'image/png'],
  ['.svg', 'image/svg+xml'],
]);
/** One or two plain path segments: nothing that could climb out of the folder. */
const SAFE_PATH = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_-][A-Za-z0-9_.-]*)?$/;

/**
 * The page, its scripts and styles (`/app/…`) and the vendored libraries (`/vendor/leaflet/…`,
 * `/vendor/uplot/…`). Files are read once and kept: they change only with a new release.
 */
export class StaticFiles {
  private readonly cache = new Map<string, Promise<Buffer>>();

  constructor(private readonly headers: Record<string, string>) {}

  page(res: ServerResponse): Promise<void> {
    return this.send(res, join(WEB_DIR, 'index.html'));
  }

  app(res: ServerResponse, path: string): Promise<void> {
    return this.send(res, join(WEB_DIR, safe(path)));
  }

  vendor(res: ServerResponse, library: string, path: string): Promise<void> {
    const dir = VENDOR_DIRS.get(library);
    if (!dir) throw new HttpError(404, `no vendored library ${library}`);
    return this.send(res, join(dir, safe(path)));
  }

  private async send(res: ServerResponse, file: string): Promise<void> {
    const type = TYPES.get(extname(file));
    if (!type) throw new HttpError(404, `no such file ${file.slice(file.lastIndexOf('/') + 1)}`);
    const body = await this.read(file);
    res.writeHead(200, {
      ...this.headers,
      'content-type': type,
      'content-length': body.length,
      'cache-control': 'no-cache',
      'x-content-type-options': 'nosniff',
    });
    res.end(body);
  }

  private read(file: string): Promise<Buffer> {
    let body = this.cache.get(file);
    if (!body) {
      body = readFile(file).catch((err: NodeJS.ErrnoException) => {
        this.cache.delete(file);
        throw err.code === 'ENOENT' ? new HttpError(404, `no such file ${file.slice(file.lastIndexOf('/') + 1)}`) : err;
      });
      this.cache.set(file, body);
    }
    return body;
  }
}

function safe(path: string): string {
  if (!SAFE_PATH.test(path)) throw new HttpError(404, 'no such file');
  return path;
}
