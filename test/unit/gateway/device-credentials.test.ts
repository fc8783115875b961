import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it, vi } from 'vitest';
import { DeviceCredentials } from '../../../gateway/device-credentials.js';
import { tempDir } from '../../support/harness.js';

const dir = tempDir('fleet-credentials-');
let n = 0;
const file = () => join(dir, `devices-${n++}.json`);
const open: DeviceCredentials[] = [];
afterEach(() => open.splice(0).forEach((c) => c.close()));

function credentials(path: string, onReload?: (err?: Error) => void): DeviceCredentials {
  const c = new DeviceCredentials(path, onReload);
  open.push(c);
  return c;
}

describe('DeviceCredentials', () => {
  it('reads nothing when constructed: a bad file is reported by load(), naming the file and the field', () => {
    const path = file();
    writeFileSync(path, JSON.stringify({ vehicles: { 'truck-1': 'md5$abc' } }));
    const c = credentials(path);
    assert.throws(
      () => c.load(),
      (err: Error) => err.message.startsWith(`${path}: vehicles.truck-1: `),
    );
  });

  it('reads the file as it is when load() is called, not when constructed', () => {
    const path = file();
    const c = credentials(path);
    const secret = DeviceCredentials.add(path, 'truck-1');
    assert.equal(c.check('truck-1', secret), 'unknown', 'not loaded yet: no vehicle is admitted');
    c.load();
    assert.equal(c.check('truck-1', secret), 'ok');
  });

  it('answers ok, wrong, unknown and revoked', () => {
    const path = file();
    const secret = DeviceCredentials.add(path, 'truck-1');
    DeviceCredentials.add(path, 'truck-2');
    DeviceCredentials.revoke(path, 'truck-2');
    const c = credentials(path);
    c.load();
    assert.equal(c.check('truck-1', secret), 'ok');
    assert.equal(c.check('truck-1', `${secret}x`), 'wrong');
    assert.equal(c.check('truck-1', undefined), 'wrong');
    assert.equal(c.check('truck-3', secret), 'unknown');
    assert.equal(c.check('truck-2', secret), 'revoked');
    assert.deepEqual([c.admits('truck-1'), c.admits('truck-2'), c.admits('truck-3')], [true, false, false]);
  });

  it('a missing file enrols no one', () => {
    const c = credentials(join(dir, 'absent.json'));
    c.load();
    assert.equal(c.check('truck-1', 'anything'), 'unknown');
  });

  describe('once loaded, follows the file', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('takes a revocation within a second, without a restart, even one made right after loading', () => {
      const path = file();
      const secret = DeviceCredentials.add(path, 'truck-1');
      const reloads: (string | undefined)[] = [];
      const c = credentials(path, (err) => reloads.push(err?.message));
      c.load();
      DeviceCredentials.revoke(path, 'truck-1');
      vi.advanceTimersByTime(1000);
      assert.equal(c.check('truck-1', secret), 'revoked');
      assert.deepEqual(reloads, [undefined]);
      vi.advanceTimersByTime(5000);
      assert.deepEqual(reloads, [undefined], 'an unchanged file is not read again');
    });

    it('keeps the last good list when an edit breaks the file, says so once, and takes the file once it is repaired', () => {
      const path = file();
      const secret = DeviceCredentials.add(path, 'truck-1');
      const reloads: (string | undefined)[] = [];
      const c = credentials(path, (err) => reloads.push(err?.message));
      c.load();
      writeFileSync(path, '{"vehicles": ');
      vi.advanceTimersByTime(3000);
      assert.equal(reloads.length, 1);
      assert.match(reloads[0]!, /not valid JSON/);
      assert.equal(c.check('truck-1', secret), 'ok', 'the last good list stays in force');
      writeFileSync(path, '{"vehicles": {}}');
      vi.advanceTimersByTime(1000);
      assert.deepEqual(reloads.slice(1), [undefined]);
      assert.equal(c.check('truck-1', secret), 'unknown');
    });

    it('looks no more once closed, and never keeps the process alive', () => {
      const path = file();
      const secret = DeviceCredentials.add(path, 'truck-1');
      const c = credentials(path);
      c.load();
      c.close();
      DeviceCredentials.revoke(path, 'truck-1');
      vi.advanceTimersByTime(5000);
      assert.equal(c.check('truck-1', secret), 'ok');
      assert.equal(vi.getTimerCount(), 0);
    });
  });
});
