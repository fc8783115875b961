import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { DeadLetterStore, type DeadLetter } from '../../../gateway/dead-letter.js';
import { tempDir } from '../../support/harness.js';
import { queryFile, queryValue } from '../../support/sqlite.js';

const letter = (vehicle: string, marker: number, bytes = 1000): DeadLetter => ({
  vehicle,
  topic: `fleet/v1/${vehicle}/telemetry`,
  reason: 'malformed: payload is neither binary nor valid JSON',
  receivedAt: 1_764_000_000_000 + marker,
  payload: Buffer.alloc(bytes, marker),
});
/** Bytes a letter counts for: payload, topic and reason. */
const size = (d: DeadLetter) => d.payload.length + Buffer.byteLength(d.topic) + Buffer.byteLength(d.reason);

describe('the dead-letter store', () => {
  it("deletes a vehicle's oldest letters past its share, and leaves other vehicles' alone", () => {
    const one = size(letter('truck-1', 0));
    const store = new DeadLetterStore(join(tempDir('fleet-dl-'), 'dead-letters.db'), { maxBytes: 100 * one, maxBytesPerVehicle: 3 * one });
    store.put(letter('truck-2', 99));
    const dropped = [1, 2, 3, 4, 5].map((i) => store.put(letter('truck-1', i)));
    assert.deepEqual(
      dropped.map((d) => d.vehicle),
      [0, 0, 0, 1, 1],
    );
    assert.deepEqual(store.stats(), { letters: 4, bytes: 4 * one, dropped: 2 });
    store.close();
  });

  it('deletes the oldest letters of any vehicle past the whole cap', () => {
    const one = size(letter('truck-1', 0));
    const store = new DeadLetterStore(join(tempDir('fleet-dl-'), 'dead-letters.db'), { maxBytes: 4 * one, maxBytesPerVehicle: 4 * one });
    for (const [v, i] of [
      ['truck-1', 1],
      ['truck-2', 2],
      ['truck-1', 3],
      ['truck-3', 4],
    ] as const)
      assert.deepEqual(store.put(letter(v, i)), { vehicle: 0, store: 0 });
    assert.deepEqual(store.put(letter('truck-3', 5)), { vehicle: 0, store: 1 });
    // A large one: truck-3's own oldest goes for its share, then the oldest of all for the store's.
    assert.deepEqual(store.put(letter('truck-3', 6, 2500)), { vehicle: 1, store: 2 });
    assert.ok(store.stats().bytes <= 4 * one);
    store.close();
  });

  it('counts what an existing file holds when it is opened again, and keeps it private', () => {
    const path = join(tempDir('fleet-dl-'), 'dead-letters.db');
    const limits = { maxBytes: 1e6, maxBytesPerVehicle: 1e5 };
    const first = new DeadLetterStore(path, limits);
    first.put(letter('truck-1', 1));
    first.put(letter('truck-2', 2, 500));
    const held = first.stats();
    first.close();
    const again = new DeadLetterStore(path, limits);
    assert.deepEqual(again.stats(), { ...held, dropped: 0 });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    again.close();
  });

  it('adopts a file of the release before schema versions, counting and keeping the letters in it', () => {
    const path = join(tempDir('fleet-dl-'), 'dead-letters.db');
    const old = new Database(path);
    old.exec(`CREATE TABLE dead_letters (
      id INTEGER PRIMARY KEY, vehicle TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
      received_at INTEGER NOT NULL, payload BLOB NOT NULL);
      CREATE INDEX dead_letters_by_vehicle ON dead_letters (vehicle, id);`);
    const kept = letter('truck-1', 1);
    old
      .prepare('INSERT INTO dead_letters (vehicle, topic, reason, received_at, payload) VALUES (?, ?, ?, ?, ?)')
      .run(kept.vehicle, kept.topic, kept.reason, kept.receivedAt, kept.payload);
    old.close();
    const store = new DeadLetterStore(path, { maxBytes: 1e6, maxBytesPerVehicle: 1e5 });
    assert.deepEqual(store.stats(), { letters: 1, bytes: size(kept), dropped: 0 });
    store.put(letter('truck-1', 2));
    store.close();
    assert.equal(queryValue(path, 'PRAGMA user_version'), 1);
    assert.deepEqual(queryFile(path, 'SELECT vehicle, received_at AS receivedAt FROM dead_letters ORDER BY id'), [
      { vehicle: 'truck-1', receivedAt: kept.receivedAt },
      { vehicle: 'truck-1', receivedAt: letter('truck-1', 2).receivedAt },
    ]);
  });
});
