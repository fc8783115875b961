/** An object as a listing shows it. */
export interface StoredObject {
  key: string;
  size: number;
  /** What changes when the content does (S3's ETag, a file's size and mtime): a download cache compares it. */
  version: string;
}

/**
 * Where the archive lives: a directory (`file:///…`, the embedded default) or an S3-compatible
 * bucket (`s3://bucket/prefix`). Keys are relative to the archive's root and use `/`.
 * Every write is whole or absent: a reader never sees half an object, whatever kills the
 * writer (a temp file renamed into place; one S3 PUT).
 */
export interface ArchiveStore {
  /** The root, for logs: `file:///…` or `s3://bucket/prefix`. */
  readonly location: string;
  /** Writes a local file's bytes under `key`, replacing any object there. */
  putFile(key: string, localPath: string): Promise<void>;
  /** Writes `body` under `key`, replacing any object there. */
  put(key: string, body: Buffer): Promise<void>;
  /**
   * Writes `body` under `key` only if no object has that key (S3 `If-None-Match: *`, a file
   * linked into place). Resolves false when one does: the first writer wins, later ones read it.
   */
  putIfAbsent(key: string, body: Buffer): Promise<boolean>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Buffer | undefined>;
  /** Copies the object to a local file (written whole, then renamed into place). */
  download(key: string, localPath: string): Promise<void>;
  /** Every object whose key starts with `prefix`, in key order. */
  list(prefix: string): AsyncIterable<StoredObject>;
  delete(key: string): Promise<void>;
}
