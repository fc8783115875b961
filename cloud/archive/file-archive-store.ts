import { randomBytes } from 'node:crypto';
import { constants, createReadStream, type Dirent } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { checkArchiveKey, checkArchivePrefix } from './archive-key.js';
import type { ArchiveStore, StoredObject } from './object-store.js';

/**
 * The archive in a directory. An object is written to a dot-named temporary file beside its
 * key, flushed to disk, then renamed (or, for putIfAbsent, hard-linked) into place, and the
 * directory flushed: a reader sees the whole object or none, whatever stops the writer. A
 * temporary file left by a killed writer starts with `.`, which no key does, so listings
 * and reads never see it.
 */
export class FileArchiveStore implements ArchiveStore {
  readonly location: string;

  constructor(private readonly root: string) {
    this.location = pathToFileURL(root).href;
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const target = this.path(key);
    const temp = await this.writeTemp(target, (out) => copyInto(out, localPath));
    await this.commit(temp, target, 'replace');
  }

  async put(key: string, body: Buffer): Promise<void> {
    const target = this.path(key);
    const temp = await this.writeTemp(target, (out) => out.writeFile(body));
    await this.commit(temp, target, 'replace');
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    const target = this.path(key);
    const temp = await this.writeTemp(target, (out) => out.writeFile(body));
    return this.commit(temp, target, 'if-absent');
  }

  async get(key: string): Promise<Buffer | undefined> {
    return readFile(this.path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
  }

  async download(key: string, localPath: string): Promise<void> {
    await mkdir(dirname(localPath), { recursive: true });
    const temp = await this.writeTemp(localPath, (out) => copyInto(out, this.path(key)));
    await rename(temp, localPath);
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    // Only the directory the prefix names in full needs walking; the rest of the prefix filters.
    const dir = checkArchivePrefix(prefix).slice(0, prefix.lastIndexOf('/') + 1);
    const found: StoredObject[] = [];
    for await (const file of walk(join(this.root, dir))) {
      const key = relative(this.root, file.path).split(sep).join('/');
      if (!key.startsWith(prefix)) continue;
      found.push({ key, size: file.size, version: `${file.size}-${file.mtimeMs}` });
    }
    // Sorted whole: a per-directory walk is not key order (`a-b` sorts before `a/b`).
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async delete(key: string): Promise<void> {
    await unlink(this.path(key)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  private path(key: string): string {
    return join(this.root, checkArchiveKey(key));
  }

  /** A flushed temporary file beside `target`, holding what `fill` wrote. */
  private async writeTemp(target: string, fill: (out: FileHandle) => Promise<void>): Promise<string> {
    await mkdir(dirname(target), { recursive: true });
    const temp = join(dirname(target), `.${randomBytes(6).toString('hex')}.tmp`);
    const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await fill(handle);
      await handle.sync();
    } catch (err) {
      await handle.close();
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    await handle.close();
    return temp;
  }

  /** Moves the temporary file into place; with `if-absent`, only when nothing is there yet. */
  private async commit(temp: string, target: string, mode: 'replace' | 'if-absent'): Promise<boolean> {
    let written = true;
    if (mode === 'replace') {
      await rename(temp, target);
    } else {
      // link() fails with EEXIST when the name is taken: of two racing writers, one wins.
      written = await link(temp, target).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw err;
        },
      );
      await unlink(temp);
    }
    if (written) await syncDir(dirname(target));
    return written;
  }
}

function copyInto(out: FileHandle, source: string): Promise<void> {
  return out.writeFile(createReadStream(source));
}

/** The rename is durable only once the directory's entry is on disk. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

interface WalkedFile {
  path: string;
  size: number;
  mtimeMs: number;
}

async function* walk(dir: string): AsyncGenerator<WalkedFile> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* walk(path);
    else if (entry.isFile()) {
      const s = await stat(path);
      yield { path, size: s.size, mtimeMs: s.mtimeMs };
    }
  }
}
