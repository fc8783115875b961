import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { kill, runFleet, tempDir, waitFor } from '../support/harness.js';

/** The permission bits of a file or directory, in octal as `ls -l` shows them. */
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

describe("the gateway's and the agent's files are their owner's", () => {
  it('a running demo keeps data directories 750, and its databases (with their WAL) and log 600', async () => {
    const dir = join(tempDir('fleet-modes-'), 'demo');
    const p = runFleet(['demo', '--trucks', '1', '--port', '0', '--console-port', '0', '--data-dir', dir]);
    try {
      // While it runs, so that the WAL and shared-memory files exist too.
      const files = (sub: string) =>
        (existsSync(join(dir, sub)) ? readdirSync(join(dir, sub)) : []).filter((f) => /\.db(-wal|-shm)?$/.test(f)).map((f) => join(sub, f));
      await waitFor(
        'the databases open',
        () => {
          const open = [...files('gateway'), ...files('trucks')];
          return ['gateway/stream.db-wal', 'gateway/dead-letters.db-shm', '.buffer.db-wal'].every((f) => open.some((o) => o.endsWith(f)));
        },
        20_000,
        100,
      );
      const expected: Record<string, string> = { gateway: '750', trucks: '750', 'fleet.log': '600' };
      for (const f of [...files('gateway'), ...files('trucks')]) expected[f] = '600';
      const actual = Object.fromEntries(Object.keys(expected).map((f) => [f, mode(join(dir, f))]));
      assert.deepEqual(actual, expected);
    } finally {
      await kill(p);
    }
  });
});
