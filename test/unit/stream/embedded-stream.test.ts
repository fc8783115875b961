import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, it } from 'vitest';
import { EmbeddedSource } from '../../../cloud/sources/embedded-source.js';
import { sinkRecord } from '../../../gateway/sink.js';
import { EmbeddedSink } from '../../../gateway/sinks/embedded/embedded-sink.js';
import type { Batch } from '../../../shared/contract/batch.js';
import { encodeBatch } from '../../../shared/contract/codec.js';
import { tempDir } from '../../support/harness.js';

const T = Date.UTC(2026, 0, 5, 10);

function batchOf(vehicle: string, seq: number): Batch {
  return {
    vehicle,
    headTs: T + seq,
    readings: [{ vehicle, seq, ts: T + seq, clock: 'synced', sensor: 'engine_temp', value: 80 + seq, quality: 'good' }],
  };
}

/** The embedded log's file as the release before schema versions wrote it, holding one bare batch. */
function previousReleaseLog(path: string, batch: Batch, receivedAt: number): void {
  const db = new Database(path);
  db.exec(`
    CREATE TABLE IF NOT EXISTS telemetry (
      offset INTEGER PRIMARY KEY AUTOINCREMENT, vehicle TEXT NOT NULL, received_at INTEGER NOT NULL, payload BLOB NOT NULL);
    CREATE INDEX IF NOT EXISTS telemetry_by_time ON telemetry (received_at);
    CREATE TABLE IF NOT EXISTS consumers (name TEXT PRIMARY KEY, offset INTEGER NOT NULL) WITHOUT ROWID;`);
  db.prepare('INSERT INTO telemetry (vehicle, received_at, payload) VALUES (?, ?, ?)').run(batch.vehicle, receivedAt, encodeBatch(batch));
  db.close();
}

describe('the embedded stream', () => {
  it('carries what the gateway wrote through the sink to the source: the batch and its receive time', async () => {
    const path = join(tempDir(), 'stream.db');
    const sink = new EmbeddedSink(path);
    await sink.start();
    await Promise.all([sink.write(sinkRecord(batchOf('truck-1', 1), T + 10)), sink.write(sinkRecord(batchOf('truck-2', 1), T + 11))]);
    await sink.close();
    const source = new EmbeddedSource(path, 'detector', 0);
    const records = await source.poll(10);
    // The log is one lane; a record's position is its offset, its size the stored record's.
    assert.deepEqual(
      records.map(({ size, ...r }) => (assert.ok(size > 0), r)),
      [
        { offset: 1, vehicle: 'truck-1', receivedAt: T + 10, batch: batchOf('truck-1', 1), rebuild: false, lane: 'log', position: '1' },
        { offset: 2, vehicle: 'truck-2', receivedAt: T + 11, batch: batchOf('truck-2', 1), rebuild: false, lane: 'log', position: '2' },
      ],
    );
    await source.close();
  });

  it('appends a commit of more records than one INSERT takes in the order they were written', async () => {
    const path = join(tempDir(), 'stream.db');
    const sink = new EmbeddedSink(path);
    await sink.start();
    // Written in one turn, so one commit: two statements of many rows and single rows after them.
    const written = Array.from({ length: 150 }, (_, i) => batchOf(`truck-${i % 7}`, i + 1));
    await Promise.all(written.map((b, i) => sink.write(sinkRecord(b, T + i))));
    await sink.close();
    const source = new EmbeddedSource(path, 'detector', 0);
    const records = await source.poll(200);
    assert.deepEqual(
      records.map((r) => [r.offset, r.batch]),
      written.map((b, i) => [i + 1, b]),
    );
    await source.close();
  });

  it('resolves writes of many turns, made while earlier ones are being synced to disk, each once and in order', async () => {
    const path = join(tempDir(), 'stream.db');
    const sink = new EmbeddedSink(path);
    await sink.start();
    const written: Batch[] = [];
    const writes: Promise<void>[] = [];
    for (let turn = 0; turn < 20; turn++) {
      for (let k = 0; k < 5; k++) {
        const b = batchOf(`truck-${k}`, turn + 1);
        written.push(b);
        writes.push(sink.write(sinkRecord(b, T + turn)));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(writes);
    await sink.close();
    const source = new EmbeddedSource(path, 'detector', 0);
    assert.deepEqual(
      (await source.poll(200)).map((r) => r.batch),
      written,
    );
    await source.close();
  });

  it('adopts a log written before schema versions and records framed, and reads its old records after the upgrade', async () => {
    const path = join(tempDir(), 'stream.db');
    previousReleaseLog(path, batchOf('truck-1', 1), T);
    const sink = new EmbeddedSink(path);
    await sink.start();
    await sink.write(sinkRecord(batchOf('truck-1', 2), T + 1000));
    await sink.close();

    const file = new Database(path, { readonly: true });
    assert.equal(file.pragma('user_version', { simple: true }), 1);
    file.close();
    const source = new EmbeddedSource(path, 'detector', 0);
    const records = await source.poll(10);
    assert.deepEqual(
      records.map((r) => [r.offset, r.vehicle, r.receivedAt, r.batch]),
      [
        [1, 'truck-1', T, batchOf('truck-1', 1)],
        [2, 'truck-1', T + 1000, batchOf('truck-1', 2)],
      ],
    );
    await source.close();
  });
});
