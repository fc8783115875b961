import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AWS_REGION } from '../../shared/defaults.js';
import { FileArchiveStore } from './file-archive-store.js';
import type { ArchiveStore } from './object-store.js';
import { S3ArchiveStore } from './s3-archive-store.js';

/** S3's rule for bucket names (DNS-compatible, 3 to 63 characters). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Where an archive URL points: a directory, or a bucket and a key prefix ('' or ending in '/'). */
export type ArchiveLocation = { scheme: 'file'; dir: string } | { scheme: 's3'; bucket: string; prefix: string };

/** Reads `file:///absolute/dir` or `s3://bucket[/prefix]`; anything else throws, saying what to give. */
export function parseArchiveUrl(url: string): ArchiveLocation {
  const problem = (why: string) => new Error(`archive URL ${JSON.stringify(url)} ${why}: use file:///absolute/dir or s3://bucket/prefix`);
  if (!URL.canParse(url)) throw problem('is not a URL');
  // Checked before parsing: the URL parser resolves `..` away.
  if (/\/\.{1,2}(\/|$)/.test(url)) throw problem('has "." or ".." in its path');
  const parsed = new URL(url);
  if (parsed.search || parsed.hash) throw problem('has a query or fragment');
  if (parsed.protocol === 'file:') {
    if (parsed.host !== '') throw problem('names a host');
    const dir = fileURLToPath(parsed);
    if (!isAbsolute(dir)) throw problem('is not an absolute path');
    return { scheme: 'file', dir: dir.replace(/\/+$/, '') || '/' };
  }
  if (parsed.protocol === 's3:') {
    if (!BUCKET.test(parsed.hostname)) throw problem(`has no valid bucket name (got ${JSON.stringify(parsed.hostname)})`);
    if (parsed.username || parsed.password || parsed.port) throw problem('carries credentials or a port (give those the AWS way)');
    const path = decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, '');
    return { scheme: 's3', bucket: parsed.hostname, prefix: path === '' ? '' : `${path}/` };
  }
  throw problem(`has the scheme ${parsed.protocol}`);
}

/** Why `url` is no archive URL, or undefined when it is one (for a setting's check). */
export function archiveUrlProblem(url: string): string | undefined {
  try {
    parseArchiveUrl(url);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * The store an archive URL names. An S3 store finds its endpoint, region and credentials the
 * way the AWS tools do: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (an emulator, MinIO),
 * AWS_REGION or AWS_DEFAULT_REGION, and the SDK's default credential chain.
 */
export function openArchiveStore(url: string, env: NodeJS.ProcessEnv = process.env): ArchiveStore {
  const at = parseArchiveUrl(url);
  if (at.scheme === 'file') return new FileArchiveStore(at.dir);
  return new S3ArchiveStore(at.bucket, at.prefix, {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || AWS_REGION,
    endpoint: env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined,
  });
}
