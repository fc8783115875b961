import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FileArchiveStore } from '../../cloud/archive/file-archive-store.js';
import { openArchiveStore } from '../../cloud/archive/open-archive-store.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { archiveStoreContract } from '../support/archive-store-contract.js';
import { tempDir, waitFor } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';
import { ROOT } from '../support/paths.js';

const REGION = 'eu-west-1';
let moto: MotoServer;
let buckets = 0;

beforeAll(async () => {
  moto = await startMoto();
  // The store takes its credentials from the SDK's default chain, as in production.
  process.env.AWS_ACCESS_KEY_ID = 'test';
  process.env.AWS_SECRET_ACCESS_KEY = 'test';
});
afterAll(() => moto?.stop());

archiveStoreContract('S3', async () => {
  const bucket = `archive-${++buckets}`;
  const s3 = new S3Client({ ...awsClientConfig({ region: REGION, endpoint: moto.endpoint }), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }));
  s3.destroy();
  // Under a prefix, so the keys the store returns are shown to be relative to it.
  return openArchiveStore(`s3://${bucket}/fleet/readings`, { AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_REGION: REGION });
});

describe('directory archive store, writer killed', () => {
  it('leaves nothing under the key when the writer dies in the middle of an object', async () => {
    const root = tempDir('archive-kill-');
    const store = new FileArchiveStore(root);
    const key = 'dt=2026-01-05/hour=10/part-0-1-100.parquet';
    // The child copies a FIFO under the key; it is killed with part of the object sent.
    const fifo = join(tempDir('archive-fifo-'), 'object');
    execFileSync('mkfifo', [fifo]);
    const script = `
      const { FileArchiveStore } = await import(${JSON.stringify(join(ROOT, 'dist/cloud/archive/file-archive-store.js'))});
      await new FileArchiveStore(${JSON.stringify(root)}).putFile(${JSON.stringify(key)}, ${JSON.stringify(fifo)});`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
    const sender = createWriteStream(fifo);
    sender.on('error', () => undefined); // the reader dies: EPIPE is expected
    sender.write(Buffer.alloc(4 * 1024 * 1024, 1));
    const dir = join(root, 'dt=2026-01-05', 'hour=10');
    const temp = await waitFor('the writer to have bytes on disk', async () => {
      const names = await readdir(dir).catch(() => []);
      const name = names.find((n) => n.endsWith('.tmp'));
      return name && (await stat(join(dir, name))).size > 1024 * 1024 && name;
    });
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    sender.destroy();

    assert.equal(await store.get(key), undefined);
    for await (const o of store.list('')) assert.fail(`listed ${o.key}`);
    // The half-written bytes are there, under a name no key can have.
    assert.ok((await readdir(dir)).includes(temp));
  });
});
