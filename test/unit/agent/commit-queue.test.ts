import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { CommitQueue, shed, writeFailure, type WriteFailure } from '../../../agent/commit-queue.js';
import type { StampedSample } from '../../../agent/device-clock.js';
import type { SensorId } from '../../../shared/contract/reading.js';
import type { Logger } from '../../../shared/log.js';

const T0 = Date.UTC(2024, 5, 1, 8);
const sample = (sensor: SensorId, i: number): StampedSample => ({ ts: T0 + i, clock: 'synced', sensor, value: i, quality: 'good' });
const diskFull = () => new Database.SqliteError('database or disk is full', 'SQLITE_FULL');

/** A logger that keeps what was logged at warn and above. */
function recordingLog() {
  const lines: [string, string][] = [];
  const at = (level: string) => (_: unknown, msg: string) => lines.push([level, msg]);
  return { lines, log: { error: at('error'), warn: at('warn'), info: () => {} } as unknown as Logger };
}

function queue(maxHeld = 100) {
  const { lines, log } = recordingLog();
  const errors: string[] = [];
  const drops: [WriteFailure, number][] = [];
  const q = new CommitQueue({ maxHeld, retryBaseMs: 100, retryMaxMs: 2000 }, log, {
    writeError: (code) => errors.push(code),
    dropped: (reason, n) => drops.push([reason, n]),
  });
  return { q, lines, errors, drops };
}

describe('writeFailure', () => {
  it('knows a full disk and a failing one by their codes, and nothing else', () => {
    assert.equal(writeFailure(diskFull()), 'disk_full');
    assert.equal(writeFailure(Object.assign(new Error('no space'), { code: 'ENOSPC' })), 'disk_full');
    assert.equal(writeFailure(new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_WRITE')), 'io_error');
    assert.equal(writeFailure(new Database.SqliteError('malformed', 'SQLITE_CORRUPT')), undefined);
    assert.equal(writeFailure(new TypeError('a bug')), undefined);
    assert.equal(writeFailure(undefined), undefined);
  });
});

describe('shed', () => {
  it('drops gps first, then speed and rpm, temperatures last, oldest first', () => {
    const order: SensorId[] = ['engine_temp', 'gps', 'speed', 'container_temp', 'rpm', 'gps', 'speed'];
    const samples = order.map((s, i) => sample(s, i));
    assert.deepEqual(shed(samples, 7), samples);
    assert.deepEqual(
      shed(samples, 6).map((s) => s.value),
      [0, 2, 3, 4, 5, 6],
      'the older gps',
    );
    assert.deepEqual(
      shed(samples, 4).map((s) => s.value),
      [0, 3, 4, 6],
      'both gps, then the older speed',
    );
    assert.deepEqual(
      shed(samples, 1).map((s) => s.value),
      [3],
      'the newest temperature is the last to go',
    );
  });
});

describe('CommitQueue', () => {
  it('holds the samples through refused writes, logs once, and commits them all in order once a write succeeds', () => {
    const { q, lines, errors } = queue();
    const committed: number[][] = [];
    let full = true;
    const write = (samples: StampedSample[]) => {
      if (full) throw diskFull();
      committed.push(samples.map((s) => s.value));
      return samples.length;
    };
    for (let i = 0; i < 5; i++) {
      q.push(sample('engine_temp', i));
      assert.equal(q.commit(write), undefined);
    }
    assert.equal(q.failing, true);
    assert.equal(q.length, 5);
    assert.deepEqual(q.health(), {
      state: 'degraded',
      detail: 'buffer disk full: 5 samples held in memory',
      held: 5,
      dropped: 0,
      writeErrors: 5,
    });
    assert.deepEqual(errors, Array(5).fill('SQLITE_FULL'));
    assert.deepEqual(
      lines,
      [['error', 'buffer write failed (disk full): holding samples in memory and retrying']],
      'one error per episode',
    );
    full = false;
    assert.equal(q.commit(write), 5);
    assert.deepEqual(committed, [[0, 1, 2, 3, 4]]);
    assert.equal(q.length, 0);
    assert.deepEqual(q.health(), { state: 'ok', held: 0, dropped: 0, writeErrors: 5 });
    assert.deepEqual(lines.at(-1), ['warn', 'buffer writable again']);
  });

  it('backs off between retries, up to the ceiling', () => {
    const { q } = queue();
    assert.equal(q.due(), true);
    const now = Date.now();
    q.attempt(() => {
      throw diskFull();
    });
    assert.equal(q.due(now), false, 'not at once');
    assert.equal(q.due(now + 2001), true, 'within the ceiling');
  });

  it('keeps the held samples within the cap, lowest priority first, and counts the drops', () => {
    const { q, lines, drops } = queue(3);
    const refuse = () => {
      throw diskFull();
    };
    (['gps', 'engine_temp', 'speed', 'gps'] as const).forEach((s, i) => q.push(sample(s, i)));
    q.commit(refuse);
    q.push(sample('container_temp', 4));
    q.trim();
    assert.deepEqual(drops, [
      ['disk_full', 1],
      ['disk_full', 1],
    ]);
    assert.equal(q.health().dropped, 2);
    assert.equal(lines.filter(([level]) => level === 'error').length, 2, 'the failure, and the first drop of the episode');
    let kept: number[] = [];
    q.commit((samples) => (kept = samples.map((s) => s.value)));
    assert.deepEqual(kept, [1, 2, 4], 'both gps gone');
  });

  it('throws what is not a storage failure, and keeps the samples', () => {
    const { q } = queue();
    q.push(sample('speed', 0));
    assert.throws(
      () =>
        q.commit(() => {
          throw new TypeError('a bug');
        }),
      TypeError,
    );
    assert.equal(q.failing, false);
    assert.equal(q.length, 1);
  });
});
