import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { awsClientConfig, type AwsOptions } from '../../shared/aws-client-config.js';
import { checkArchiveKey, checkArchivePrefix } from './archive-key.js';
import type { ArchiveStore, StoredObject } from './object-store.js';

/** S3 answers 409 while another conditional write of the same key is in flight: try again, and one of them gets 412. */
const CONFLICT_RETRIES = 5;
const CONFLICT_BACKOFF_MS = 100;

/**
 * The archive in an S3-compatible bucket, under `prefix`. One PUT per object (up to 5 GiB,
 * far above the archive's files) is whole or absent by S3's own guarantee; putIfAbsent is a
 * conditional PUT (`If-None-Match: *`), so of two writers of one key exactly one succeeds.
 */
export class S3ArchiveStore implements ArchiveStore {
  readonly location: string;
  private readonly client: S3Client;

  /** `prefix` is '' or ends with '/'. */
  constructor(
    private readonly bucket: string,
    private readonly prefix: string,
    aws: AwsOptions,
  ) {
    this.location = `s3://${bucket}/${prefix}`.replace(/\/$/, '');
    // An endpoint override is an emulator or a gateway such as MinIO, which take the bucket
    // in the path; virtual-host addressing would need a DNS name per bucket.
    this.client = new S3Client({ ...awsClientConfig(aws), forcePathStyle: aws.endpoint !== undefined });
  }

  async putFile(key: string, localPath: string): Promise<void> {
    const { size } = await stat(localPath);
    await this.putObject({ Key: this.key(key), Body: createReadStream(localPath), ContentLength: size });
  }

  async put(key: string, body: Buffer): Promise<void> {
    await this.putObject({ Key: this.key(key), Body: body });
  }

  async putIfAbsent(key: string, body: Buffer): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.putObject({ Key: this.key(key), Body: body, IfNoneMatch: '*' });
        return true;
      } catch (err) {
        const status = err instanceof S3ServiceException ? err.$metadata.httpStatusCode : undefined;
        if (status === 412) return false;
        if (status === 409 && attempt < CONFLICT_RETRIES) {
          await sleep(CONFLICT_BACKOFF_MS * (attempt + 1));
          continue;
        }
        throw err;
      }
    }
  }

  async get(key: string): Promise<Buffer | undefined> {
    const body = await this.getBody(key);
    return body && Buffer.from(await body.transformToByteArray());
  }

  async download(key: string, localPath: string): Promise<void> {
    const body = await this.getBody(key);
    if (!body) throw new Error(`${this.location}/${key}: no such object`);
    await mkdir(dirname(localPath), { recursive: true });
    const temp = join(dirname(localPath), `.${basename(localPath)}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      // The SDK's Node handler streams the body as a Readable.
      await pipeline(body as Readable, createWriteStream(temp));
      await rename(temp, localPath);
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    let token: string | undefined;
    do {
      const page = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.prefix + checkArchivePrefix(prefix), ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, version: o.ETag ?? '' };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
  }

  private key(key: string): string {
    return this.prefix + checkArchiveKey(key);
  }

  private async putObject(input: Omit<PutObjectCommandInput, 'Bucket'>): Promise<void> {
    await this.client.send(new PutObjectCommand({ Bucket: this.bucket, ...input }));
  }

  private async getBody(key: string) {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(key) }));
      return res.Body;
    } catch (err) {
      if (err instanceof NoSuchKey) return undefined;
      throw err;
    }
  }
}
