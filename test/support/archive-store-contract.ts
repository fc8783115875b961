import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import type { ArchiveStore, StoredObject } from '../../cloud/archive/object-store.js';
import { tempDir } from './harness.js';

async function listAll(store: ArchiveStore, prefix = ''): Promise<StoredObject[]> {
  const out: StoredObject[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

/** What every ArchiveStore does, run against each implementation on a fresh, empty root. */
export function archiveStoreContract(name: string, newStore: () => Promise<ArchiveStore>): void {
  describe(`${name} archive store`, () => {
    it('reads back what was put, and nothing for a key never written', async () => {
      const store = await newStore();
      await store.put('dt=2026-01-05/hour=10/a.parquet', Buffer.from('first'));
      assert.equal((await store.get('dt=2026-01-05/hour=10/a.parquet'))?.toString(), 'first');
      await store.put('dt=2026-01-05/hour=10/a.parquet', Buffer.from('second'));
      assert.equal((await store.get('dt=2026-01-05/hour=10/a.parquet'))?.toString(), 'second');
      assert.equal(await store.get('dt=2026-01-05/hour=10/missing.parquet'), undefined);
    });

    it('uploads a local file and downloads it whole', async () => {
      const store = await newStore();
      const dir = tempDir('archive-files-');
      const body = Buffer.alloc(3 * 1024 * 1024 + 17, 7);
      await writeFile(join(dir, 'up.bin'), body);
      await store.putFile('dt=2026-01-05/hour=11/big.parquet', join(dir, 'up.bin'));
      await store.download('dt=2026-01-05/hour=11/big.parquet', join(dir, 'nested', 'down.bin'));
      assert.ok((await readFile(join(dir, 'nested', 'down.bin'))).equals(body));
      const [listed] = await listAll(store);
      assert.equal(listed?.size, body.length);
    });

    it('lets the first putIfAbsent win and keeps its bytes', async () => {
      const store = await newStore();
      assert.equal(await store.putIfAbsent('_fleet_archive/lane-0', Buffer.from('one')), true);
      assert.equal(await store.putIfAbsent('_fleet_archive/lane-0', Buffer.from('two')), false);
      assert.equal((await store.get('_fleet_archive/lane-0'))?.toString(), 'one');
    });

    it('lets exactly one of several concurrent putIfAbsent writers win', async () => {
      const store = await newStore();
      const bodies = ['a', 'b', 'c', 'd'].map((s) => Buffer.from(s.repeat(100_000)));
      const won = await Promise.all(bodies.map((b) => store.putIfAbsent('_fleet_archive/claim', b)));
      assert.equal(won.filter(Boolean).length, 1);
      const winner = bodies[won.indexOf(true)]!;
      assert.ok((await store.get('_fleet_archive/claim'))?.equals(winner));
    });

    it('lists recursively in key order, by prefix, with a version that follows the content', async () => {
      const store = await newStore();
      const keys = [
        'dt=2026-01-06/hour=00/p.parquet',
        'dt=2026-01-05/hour=23/p.parquet',
        'dt=2026-01-05/hour=09/p.parquet',
        'dt=2026-01-05-x',
        '_fleet_archive/state',
      ];
      for (const key of keys) await store.put(key, Buffer.from(key));
      assert.deepEqual(
        (await listAll(store)).map((o) => o.key),
        [...keys].sort(),
      );
      assert.deepEqual(
        (await listAll(store, 'dt=2026-01-05/')).map((o) => o.key),
        ['dt=2026-01-05/hour=09/p.parquet', 'dt=2026-01-05/hour=23/p.parquet'],
      );
      assert.deepEqual(
        (await listAll(store, 'dt=2026-01-05')).map((o) => o.key),
        ['dt=2026-01-05-x', 'dt=2026-01-05/hour=09/p.parquet', 'dt=2026-01-05/hour=23/p.parquet'],
      );
      const [before] = await listAll(store, 'dt=2026-01-06/');
      await store.put('dt=2026-01-06/hour=00/p.parquet', Buffer.from('other content, other length'));
      const [after] = await listAll(store, 'dt=2026-01-06/');
      assert.notEqual(after?.version, before?.version);
      assert.equal(after?.size, 'other content, other length'.length);
    });

    it('deletes, and deleting what is not there is no error', async () => {
      const store = await newStore();
      await store.put('dt=2026-01-05/hour=10/a.parquet', Buffer.from('x'));
      await store.delete('dt=2026-01-05/hour=10/a.parquet');
      await store.delete('dt=2026-01-05/hour=10/a.parquet');
      assert.equal(await store.get('dt=2026-01-05/hour=10/a.parquet'), undefined);
      assert.deepEqual(await listAll(store), []);
    });

    it('refuses keys that would leave the root or hide among temporary files', async () => {
      const store = await newStore();
      for (const key of ['../escape', '/etc/passwd', 'a//b', 'a/./b', 'a/../../b', '.hidden', '']) {
        await assert.rejects(store.put(key, Buffer.from('x')), /archive key/, key);
      }
      await assert.rejects(listAll(store, '../'), /archive key/);
    });
  });
}
