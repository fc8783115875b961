import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { FileArchiveStore } from '../../../cloud/archive/file-archive-store.js';
import { openArchiveStore } from '../../../cloud/archive/open-archive-store.js';
import { archiveStoreContract } from '../../support/archive-store-contract.js';
import { tempDir } from '../../support/harness.js';

archiveStoreContract('directory', async () => new FileArchiveStore(tempDir('archive-')));

describe('directory archive store', () => {
  it('lists nothing of a writer temporary file left beside a key', async () => {
    const root = tempDir('archive-');
    const store = new FileArchiveStore(root);
    await store.put('dt=2026-01-05/hour=10/a.parquet', Buffer.from('x'));
    await writeFile(join(root, 'dt=2026-01-05', 'hour=10', '.4f2a.tmp'), 'half');
    const keys: string[] = [];
    for await (const o of store.list('')) keys.push(o.key);
    assert.deepEqual(keys, ['dt=2026-01-05/hour=10/a.parquet']);
  });

  it('lists an archive that does not exist yet as empty', async () => {
    const store = new FileArchiveStore(join(tempDir('archive-'), 'not-yet'));
    for await (const o of store.list('')) assert.fail(`unexpected ${o.key}`);
  });
});

describe('openArchiveStore', () => {
  it('opens a directory from a file URL and a bucket from an s3 URL', () => {
    assert.equal(openArchiveStore('file:///var/lib/fleet/archive/').location, 'file:///var/lib/fleet/archive');
    assert.equal(openArchiveStore('s3://fleet-archive/prod/readings/').location, 's3://fleet-archive/prod/readings');
    assert.equal(openArchiveStore('s3://fleet-archive').location, 's3://fleet-archive');
  });

  it('refuses anything else with a message that says what to give', () => {
    for (const [url, why] of [
      ['/var/lib/fleet/archive', /is not a URL/],
      ['https://bucket.s3.amazonaws.com/x', /scheme https:/],
      ['file://host/dir', /names a host/],
      ['s3://Not_A_Bucket/x', /no valid bucket name/],
      ['s3://key:secret@bucket/x', /credentials/],
      ['s3://bucket/a/../b', /"\." or "\.\."/],
      ['s3://bucket/x?versionId=1', /query/],
    ] as const) {
      assert.throws(
        () => openArchiveStore(url),
        (err: Error) => why.test(err.message) && /file:\/\/\/absolute\/dir or s3:\/\/bucket\/prefix/.test(err.message),
        url,
      );
    }
  });
});
