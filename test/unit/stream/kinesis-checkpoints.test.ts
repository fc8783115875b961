import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { KinesisCheckpoints } from '../../../cloud/sources/kinesis-checkpoints.js';
import { tempDir } from '../../support/harness.js';
import { queryValue } from '../../support/sqlite.js';

describe('Kinesis checkpoints', () => {
  it("keeps each stream's shards apart, and a saved checkpoint across a reopen", () => {
    const path = join(tempDir(), 'checkpoints.db');
    const a = new KinesisCheckpoints(path);
    a.save(
      'fleet.telemetry',
      new Map([
        ['shard-0', { sequence: '49', arrivedAt: 1000 }],
        ['shard-1', { sequence: '50', arrivedAt: 1001 }],
      ]),
    );
    a.save('fleet.telemetry', new Map([['shard-0', { sequence: '51', arrivedAt: 1002 }]]));
    a.save('other', new Map([['shard-0', { sequence: '1', arrivedAt: 5 }]]));
    a.close();
    const b = new KinesisCheckpoints(path);
    assert.deepEqual(
      b.of('fleet.telemetry'),
      new Map([
        ['shard-0', { sequence: '51', arrivedAt: 1002 }],
        ['shard-1', { sequence: '50', arrivedAt: 1001 }],
      ]),
    );
    b.close();
  });

  it('adopts a file of the release before schema versions, keeping where each shard stood', () => {
    const path = join(tempDir(), 'checkpoints.db');
    const old = new Database(path);
    old.exec(`CREATE TABLE kinesis_checkpoints (
      stream TEXT NOT NULL, shard TEXT NOT NULL, sequence TEXT NOT NULL, arrived_at INTEGER NOT NULL,
      PRIMARY KEY (stream, shard)) WITHOUT ROWID;
      INSERT INTO kinesis_checkpoints VALUES ('fleet.telemetry', 'shardId-000000000000', '4961', 1764000000000);`);
    old.close();
    const checkpoints = new KinesisCheckpoints(path);
    assert.deepEqual(
      checkpoints.of('fleet.telemetry'),
      new Map([['shardId-000000000000', { sequence: '4961', arrivedAt: 1764000000000 }]]),
    );
    checkpoints.close();
    assert.equal(queryValue(path, 'PRAGMA user_version'), 1);
  });
});
