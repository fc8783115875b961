import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FileArchiveStore } from './file-archive-store.js';
import { dataKeyDay, inRange, type DayRange } from './archive-partitions.js';
import type { ArchiveStore, StoredObject } from './object-store.js';

/** Downloads in flight at once: enough to hide a bucket's latency, few enough to leave bandwidth to others. */
const PARALLEL_DOWNLOADS = 4;
/** Beside the data files, outside the data glob: which version of each object the cache holds. */
const MANIFEST = '_fleet_cache.json';

export interface CacheProgress {
  /** Objects in the range, and how many of them are fetched or were already cached. */
  objects: number;
  fetched: number;
  cached: number;
  bytesFetched: number;
}

/**
 * Brings a local copy of the archive's data files in `range` up to date with the store: an
 * object whose version the cache already holds is not fetched again, and a cached file whose
 * object is gone (rewritten, deleted) is removed, so a query over the copy sees what the
 * store holds. Files outside the range are left as they are.
 */
export async function syncArchiveCache(
  store: ArchiveStore,
  dir: string,
  range: DayRange,
  onProgress: (p: CacheProgress) => void = () => undefined,
): Promise<CacheProgress> {
  const manifestPath = join(dir, MANIFEST);
  const versions = await readManifest(manifestPath);
  const wanted: StoredObject[] = [];
  for await (const o of store.list('dt=')) {
    const day = dataKeyDay(o.key);
    if (day !== undefined && inRange(day, range)) wanted.push(o);
  }
  const progress: CacheProgress = { objects: wanted.length, fetched: 0, cached: 0, bytesFetched: 0 };

  const listed = new Set(wanted.map((o) => o.key));
  const local = new FileArchiveStore(dir);
  for await (const { key } of local.list('dt=')) {
    const day = dataKeyDay(key);
    if (day === undefined || !inRange(day, range) || listed.has(key)) continue;
    await local.delete(key);
    delete versions[key];
  }

  const queue = wanted.filter((o) => {
    const fresh = versions[o.key] === o.version;
    if (fresh) progress.cached++;
    return !fresh;
  });
  onProgress({ ...progress });
  const worker = async () => {
    for (let o = queue.shift(); o; o = queue.shift()) {
      await store.download(o.key, join(dir, o.key));
      versions[o.key] = o.version;
      progress.fetched++;
      progress.bytesFetched += o.size;
      onProgress({ ...progress });
    }
  };
  try {
    await Promise.all(Array.from({ length: PARALLEL_DOWNLOADS }, worker));
  } finally {
    // What was fetched before a failure stays known, so a retry fetches only the rest.
    await writeManifest(manifestPath, versions);
  }
  return progress;
}

async function readManifest(path: string): Promise<Record<string, string>> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Record<string, string>;
  } catch (err) {
    // No manifest (or a damaged one): every object is fetched again, which is only slower.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || err instanceof SyntaxError) return {};
    throw err;
  }
}

async function writeManifest(path: string, versions: Record<string, string>): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  // A name of its own: two queries may bring the same cache up to date at once.
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(temp, JSON.stringify(versions));
  await rename(temp, path);
}
