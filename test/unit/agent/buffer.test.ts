import { afterAll, beforeEach, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ReadingBuffer, type BufferOptions } from '../../../agent/buffer.js';
import type { StampedSample } from '../../../agent/device-clock.js';
import { sensorSpec, type Reading, type Sample, type SensorId } from '../../../shared/contract/reading.js';

const dir = mkdtempSync(join(tmpdir(), 'fleet-buffer-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 5, 1, 8);
const V = 'truck-1';
/** The buffer's own size estimate per row: the cap is in these units. */
const SCALAR = 64;
const GPS = 96;

let fileNo = 0;
let path = '';
const open: ReadingBuffer[] = [];
beforeEach(() => {
  path = join(dir, `buffer-${++fileNo}.db`);
});
afterAll(() => {
  for (const b of open) {
    try {
      b.close();
    } catch {
      // already closed by the test
    }
  }
});

function openBuffer(over: Partial<BufferOptions> = {}): ReadingBuffer {
  const b = new ReadingBuffer({ path, vehicle: V, maxBytes: 1 << 30, synchronous: 'NORMAL', ...over });
  open.push(b);
  return b;
}

let tsCounter = 0;
function sample(sensor: SensorId, value = 10, ts = T0 + tsCounter++ * 100): Sample {
  const s: Sample = { ts, clock: 'synced', sensor, value, quality: 'good' };
  if (sensor === 'gps') s.position = { lat: 52.52, lon: 13.405, heading: 90.5, fix: '3d' };
  return s;
}

const all = (b: ReadingBuffer) => b.after(0, 1_000_000);
const seqs = (rs: Reading[]) => rs.map((r) => r.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('ReadingBuffer seq', () => {
  it('starts at 1 and is contiguous across appends', () => {
    const b = openBuffer();
    assert.deepEqual(b.append([]), []);
    assert.equal(b.stats().nextSeq, 1);
    assert.deepEqual(seqs(b.append([sample('speed')])), [1]);
    assert.deepEqual(seqs(b.append([sample('rpm'), sample('gps'), sample('engine_temp')])), [2, 3, 4]);
    assert.deepEqual(seqs(all(b)), [1, 2, 3, 4]);
    assert.equal(b.stats().nextSeq, 5);
  });

  it('continues after close and reopen', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('rpm'), sample('speed')]);
    b.close();
    const again = openBuffer();
    assert.deepEqual(seqs(all(again)), [1, 2, 3]);
    assert.deepEqual(seqs(again.append([sample('gps')])), [4]);
  });

  it('continues after everything was acknowledged and the buffer reopened', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('rpm'), sample('speed')]);
    b.acknowledge(1, 3);
    assert.equal(b.stats().readings, 0);
    b.close();
    const again = openBuffer();
    assert.deepEqual(all(again), []);
    assert.equal(again.stats().nextSeq, 4);
    assert.deepEqual(seqs(again.append([sample('speed')])), [4], 'a reused seq would be dropped as a duplicate upstream');
  });

  it('continues after eviction emptied the buffer and it reopened', () => {
    const b = openBuffer({ maxBytes: SCALAR * 4 });
    b.append(Array.from({ length: 10 }, () => sample('gps')));
    b.close();
    const again = openBuffer({ maxBytes: SCALAR * 4 });
    assert.deepEqual(seqs(again.append([sample('speed')])), [11]);
  });
});

describe('ReadingBuffer ownership', () => {
  it('refuses a buffer file of another vehicle, naming both and the file', () => {
    openBuffer().close();
    assert.throws(
      () => openBuffer({ vehicle: 'truck-2' }),
      (err: Error) => {
        assert.equal(err.message, `buffer ${path} belongs to vehicle ${V}, not truck-2; use another data directory`);
        return true;
      },
    );
    // The refusal must not have claimed the file for the other vehicle.
    const again = openBuffer();
    assert.equal(again.stats().nextSeq, 1);
  });
});

describe('ReadingBuffer reading back', () => {
  it('returns readings after a seq, in seq order, up to a limit, as they were stored', () => {
    const b = openBuffer();
    const stored = b.append([sample('engine_temp', 91.5), sample('gps', 80), sample('container_temp', -18.25), sample('rpm', 1500)]);
    assert.deepEqual(all(b), stored);
    assert.deepEqual(stored[1], {
      vehicle: V,
      seq: 2,
      ts: stored[1]!.ts,
      clock: 'synced',
      sensor: 'gps',
      value: 80,
      quality: 'good',
      position: { lat: 52.52, lon: 13.405, heading: 90.5, fix: '3d' },
    });
    assert.ok(!('position' in stored[0]!) && !('position' in all(b)[0]!), 'only gps readings carry a position');
    assert.deepEqual(seqs(b.after(1, 2)), [2, 3]);
    assert.deepEqual(seqs(b.after(3, 100)), [4]);
    assert.deepEqual(b.after(4, 100), []);
  });

  it('keeps clock and quality', () => {
    const b = openBuffer();
    b.append([
      { ts: T0, clock: 'unsynced', sensor: 'speed', value: 3, quality: 'bad' },
      { ts: T0, clock: 'synced', sensor: 'speed', value: 3, quality: 'uncertain' },
    ]);
    assert.deepEqual(
      all(b).map((r) => [r.clock, r.quality]),
      [
        ['unsynced', 'bad'],
        ['synced', 'uncertain'],
      ],
    );
  });

  it('quantizes values to 0.01 in what it returns and what it stores', () => {
    const b = openBuffer();
    const stored = b.append([
      sample('engine_temp', 90.123456),
      sample('container_temp', -3.14159),
      sample('rpm', 1499.996),
      sample('speed', 0.004),
    ]);
    const expected = [90.12, -3.14, 1500, 0];
    assert.deepEqual(
      stored.map((r) => r.value),
      expected,
    );
    assert.deepEqual(
      all(b).map((r) => r.value),
      expected,
    );
    b.close();
    assert.deepEqual(
      all(openBuffer()).map((r) => r.value),
      expected,
    );
  });

  it('reports the newest event time', () => {
    const b = openBuffer();
    assert.equal(b.newestTs(), undefined);
    b.append([sample('speed', 1, T0 + 5000), sample('speed', 1, T0 + 4000)]);
    assert.equal(b.newestTs(), T0 + 4000, 'newest by seq: what the agent committed last');
  });
});

describe('ReadingBuffer acknowledge', () => {
  it('removes the range and updates the stats', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('gps'), sample('rpm'), sample('gps'), sample('engine_temp')]);
    assert.deepEqual(b.stats(), { readings: 5, bytes: 3 * SCALAR + 2 * GPS, evicted: 0, nextSeq: 6 });
    b.acknowledge(2, 3);
    assert.deepEqual(seqs(all(b)), [1, 4, 5]);
    assert.deepEqual(b.stats(), { readings: 3, bytes: 2 * SCALAR + GPS, evicted: 0, nextSeq: 6 });
    // A range with gaps (already gone) and beyond the end removes only what is there.
    b.acknowledge(1, 100);
    assert.deepEqual(b.stats(), { readings: 0, bytes: 0, evicted: 0, nextSeq: 6 });
    b.acknowledge(1, 100);
    assert.deepEqual(b.stats(), { readings: 0, bytes: 0, evicted: 0, nextSeq: 6 });
  });

  it('keeps readings and bytes across reopen, without counting them again', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('gps'), sample('rpm'), sample('gps')]);
    b.acknowledge(1, 1);
    const before = b.stats();
    b.close();
    assert.deepEqual(openBuffer().stats(), before);
  });
});

describe('ReadingBuffer eviction', () => {
  const CAP = 400 * SCALAR;

  /** Interleaved, a third each: gps, speed/rpm, temperatures. */
  function mixed(n: number): Sample[] {
    const order: SensorId[] = ['engine_temp', 'gps', 'speed', 'container_temp', 'rpm', 'gps'];
    return Array.from({ length: n }, (_, i) => sample(order[i % order.length]!));
  }

  /**
   * Checks the eviction order against what was appended: nothing evicted while a cheaper
   * reading survives, and within a priority the oldest first. Only exact while no cheaper
   * reading is appended after an eviction, which the tests below keep to.
   */
  function checkEvictionOrder(appended: Reading[], surviving: Reading[], protectedUpTo: number): void {
    const alive = new Set(seqs(surviving));
    const oldestAlive = new Map<number, number>();
    for (const r of surviving) {
      if (r.seq > protectedUpTo && !oldestAlive.has(sensorSpec(r.sensor).priority)) oldestAlive.set(sensorSpec(r.sensor).priority, r.seq);
    }
    for (const r of appended) {
      if (alive.has(r.seq)) continue;
      const p = sensorSpec(r.sensor).priority;
      assert.ok(r.seq > protectedUpTo, `seq ${r.seq} was in flight`);
      for (const [q, seq] of oldestAlive) {
        assert.ok(q >= p, `${r.sensor} seq ${r.seq} evicted while seq ${seq} of priority ${q} survived`);
      }
      const older = oldestAlive.get(p);
      assert.ok(older === undefined || older > r.seq, `${r.sensor} seq ${r.seq} evicted before the older seq ${older}`);
    }
  }

  it('evicts gps first, then speed and rpm, temperatures last, oldest first, and counts it', () => {
    const b = openBuffer({ maxBytes: CAP });
    // Under the cap: 60 gps, 60 speed/rpm, 60 temperatures = 60*96 + 120*64 = 13440 bytes.
    const appended = b.append(mixed(180));
    assert.equal(b.stats().evicted, 0);
    let sawOnlyGpsGone = false;
    let sawSpeedRpmGone = false;
    // Only temperatures arrive from now on, so the checks above stay exact.
    for (let i = 0; i < 600; i++) {
      appended.push(...b.append([sample(i % 2 ? 'engine_temp' : 'container_temp', 20 + (i % 7))]));
      const stats = b.stats();
      const surviving = all(b);
      assert.ok(stats.bytes <= CAP, `over the cap after append ${i}: ${stats.bytes}`);
      assert.equal(stats.readings, surviving.length);
      assert.equal(stats.evicted, appended.length - surviving.length);
      checkEvictionOrder(appended, surviving, 0);
      const count = (p: number) => surviving.filter((r) => sensorSpec(r.sensor).priority === p).length;
      if (count(0) === 0 && count(1) === 60) sawOnlyGpsGone = true;
      if (count(1) === 0 && count(2) === appended.filter((r) => sensorSpec(r.sensor).priority === 2).length) sawSpeedRpmGone = true;
    }
    assert.ok(sawOnlyGpsGone, 'never saw all gps gone with speed and rpm intact');
    assert.ok(sawSpeedRpmGone, 'never saw speed and rpm gone with every temperature intact');
    const surviving = all(b);
    assert.ok(surviving.every((r) => sensorSpec(r.sensor).priority === 2));
    assert.ok(b.stats().evicted > 120, 'temperatures were evicted too, at the end');
  });

  it('evicts by priority within one append, before the commit', () => {
    // 10 gps, 10 speed/rpm and 15 temperatures: 2560 bytes, twice the cap.
    const b = openBuffer({ maxBytes: 20 * SCALAR });
    const appended = b.append([...mixed(30), ...Array.from({ length: 5 }, () => sample('engine_temp'))]);
    assert.ok(b.stats().bytes <= 20 * SCALAR);
    checkEvictionOrder(appended, all(b), 0);
    // All gps goes, then only as many speed/rpm rows as the cap needs; every temperature stays.
    const kept = all(b).map((r) => r.sensor);
    assert.equal(kept.filter((s) => s === 'gps').length, 0);
    assert.equal(kept.filter((s) => s === 'speed' || s === 'rpm').length, 5);
    assert.equal(kept.filter((s) => s === 'engine_temp' || s === 'container_temp').length, 15);
    assert.equal(b.stats().evicted, 15);
    b.close();
    assert.equal(openBuffer({ maxBytes: 20 * SCALAR }).stats().evicted, 15, 'the count committed with the eviction');
  });

  it('never evicts readings at or below protectedUpTo, even gps', () => {
    const b = openBuffer({ maxBytes: CAP });
    const appended = b.append(mixed(180));
    b.protectedUpTo = 90;
    for (let i = 0; i < 800; i++) {
      appended.push(...b.append([sample(i % 2 ? 'engine_temp' : 'container_temp')]));
      const surviving = all(b);
      checkEvictionOrder(appended, surviving, 90);
      assert.deepEqual(seqs(surviving.slice(0, 90)), range(1, 90), `in-flight readings evicted after append ${i}`);
    }
    assert.ok(
      all(b).some((r) => r.sensor === 'gps'),
      'protected gps must survive',
    );
    assert.ok(b.stats().evicted > 0);
  });

  it('stays over the cap rather than evict what is in flight', () => {
    const b = openBuffer({ maxBytes: 10 * SCALAR });
    b.protectedUpTo = 1000;
    b.append(Array.from({ length: 20 }, () => sample('gps')));
    assert.equal(all(b).length, 20);
    assert.deepEqual(b.stats(), { readings: 20, bytes: 20 * GPS, evicted: 0, nextSeq: 21 });
  });

  it('keeps the evicted count across reopen, and keeps counting', () => {
    const b = openBuffer({ maxBytes: 20 * SCALAR });
    b.append(mixed(100));
    const { evicted } = b.stats();
    assert.ok(evicted > 0);
    const surviving = all(b);
    b.close();
    const again = openBuffer({ maxBytes: 20 * SCALAR });
    assert.equal(again.stats().evicted, evicted);
    assert.deepEqual(all(again), surviving);
    again.append(mixed(100));
    const later = again.stats().evicted;
    assert.ok(later > evicted);
    again.close();
    assert.equal(openBuffer({ maxBytes: 20 * SCALAR }).stats().evicted, later);
  });
});

describe('ReadingBuffer alerts shown', () => {
  it('is true once per alert id, also across reopen', () => {
    const b = openBuffer();
    assert.equal(b.markAlertShown('truck-1.hot.1000', T0), true);
    assert.equal(b.markAlertShown('truck-1.hot.1000', T0 + 1), false);
    assert.equal(b.markAlertShown('truck-1.hot.2000', T0 + 2), true);
    b.close();
    const again = openBuffer();
    assert.equal(again.markAlertShown('truck-1.hot.1000', T0 + 3), false);
    assert.equal(again.markAlertShown('truck-1.hot.2000', T0 + 3), false);
    assert.equal(again.markAlertShown('truck-1.hot.3000', T0 + 3), true);
  });
});

describe('ReadingBuffer clock correction', () => {
  /** A Pi without a real-time clock: the host clock says 1970 + uptime until a sync. */
  const host = (mono: number, boot: string): StampedSample => ({
    ts: mono,
    clock: 'unsynced',
    sensor: 'engine_temp',
    value: 90,
    quality: 'good',
    unsynced: { mono, boot },
  });
  const SYNC_UTC = Date.UTC(2026, 10, 25, 12);

  it('holds back readings stamped before 2001, and with holdUnsynced every unsynced one, with all after them', () => {
    const b = openBuffer();
    b.append([sample('engine_temp'), host(5_000, 'now'), sample('gps'), { ...host(6_000, 'now'), ts: T0 }]);
    assert.deepEqual(seqs(all(b)), [1], 'stops before the 1970 reading: nothing after it goes first');
    b.acknowledge(1, 1);
    assert.deepEqual(seqs(b.after(0, 100)), []);
    assert.equal(b.newestTs(), T0, 'headTs never comes from a held 1970 reading');
  });

  it('with a plausible host time holds unsynced readings only while asked to', () => {
    const b = openBuffer();
    b.append([sample('speed'), { ...host(5_000, 'now'), ts: T0 + 5 }, sample('rpm')]);
    assert.deepEqual(seqs(b.after(0, 100, true)), [1]);
    assert.deepEqual(seqs(b.after(0, 100, false)), [1, 2, 3]);
    assert.equal(b.after(0, 100)[1]!.clock, 'unsynced');
  });

  it("gives this boot's readings UTC from their monotonic time and flags them synced", () => {
    const b = openBuffer();
    b.append([host(30_000, 'now'), host(31_000, 'now'), sample('rpm')]);
    const fixed = b.correctClock({ source: 'gps', offsetMs: SYNC_UTC - 40_000, boot: 'now' });
    assert.deepEqual(fixed, { corrected: 2, estimated: 0 });
    const rs = all(b);
    assert.deepEqual(
      rs.map((r) => [r.seq, r.ts, r.clock]),
      [
        [1, SYNC_UTC - 10_000, 'synced'],
        [2, SYNC_UTC - 9_000, 'synced'],
        [3, rs[2]!.ts, 'synced'],
      ],
    );
    assert.equal(b.after(0, 100, true).length, 3, 'nothing is held any more');
    assert.deepEqual(
      b.correctClock({ source: 'gps', offsetMs: SYNC_UTC, boot: 'now' }),
      { corrected: 0, estimated: 0 },
      'a second sync changes nothing',
    );
  });

  it("places an earlier boot's 1970 readings just before this boot began, spaced as taken, still unsynced", () => {
    const b = openBuffer();
    // boot 1 never synced and was powered off; boot 2 took readings, then GPS came.
    b.append([host(10_000, 'boot-1'), host(12_000, 'boot-1'), { ...host(13_000, 'boot-1'), ts: T0 }]);
    b.append([host(2_000, 'boot-2')]);
    const bootStart = SYNC_UTC - 60_000;
    const fixed = b.correctClock({ source: 'ntp', offsetMs: bootStart, boot: 'boot-2' });
    assert.deepEqual(fixed, { corrected: 1, estimated: 2 });
    assert.deepEqual(
      all(b).map((r) => [r.ts, r.clock]),
      [
        [bootStart - 1 - 3_000, 'unsynced'],
        [bootStart - 1 - 1_000, 'unsynced'],
        [T0, 'unsynced'], // a plausible time (fake-hwclock) is kept, still flagged
        [bootStart + 2_000, 'synced'],
      ],
    );
    b.close();
    assert.equal(openBuffer().after(0, 100, true).length, 4, 'the correction is committed');
  });

  it('opens a buffer written before clock correction existed', () => {
    const old = new Database(path);
    old.exec(`CREATE TABLE readings (
        seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, clock TEXT NOT NULL, sensor TEXT NOT NULL,
        value REAL NOT NULL, quality TEXT NOT NULL, priority INTEGER NOT NULL,
        lat REAL, lon REAL, heading REAL, fix TEXT);
      INSERT INTO readings VALUES (7, ${T0}, 'synced', 'speed', 12, 'good', 1, NULL, NULL, NULL, NULL);`);
    old.close();
    const b = openBuffer();
    assert.deepEqual(seqs(all(b)), [7]);
    assert.deepEqual(seqs(b.append([host(1_000, 'now')])), [8]);
    assert.deepEqual(b.correctClock({ source: 'gps', offsetMs: SYNC_UTC, boot: 'now' }), { corrected: 1, estimated: 0 });
  });

  it('adopts a buffer of the release before schema versions, keeping its readings, its next seq and the alerts shown', () => {
    // The schema as that release made it (agent/buffer.ts before migrations), with what an agent had left in it.
    const old = new Database(path);
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
      CREATE TABLE readings (
        seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, clock TEXT NOT NULL, sensor TEXT NOT NULL,
        value REAL NOT NULL, quality TEXT NOT NULL, priority INTEGER NOT NULL,
        lat REAL, lon REAL, heading REAL, fix TEXT, mono REAL, boot TEXT);
      CREATE INDEX readings_by_priority ON readings (priority, seq);
      CREATE TABLE alerts_shown (id TEXT PRIMARY KEY, shown_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE INDEX readings_unsynced ON readings (seq) WHERE mono IS NOT NULL;
      INSERT INTO meta VALUES ('vehicle', '${V}'), ('next_seq', 13);
      INSERT INTO readings VALUES (11, ${T0}, 'synced', 'speed', 12, 'good', 1, NULL, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO readings VALUES (12, 5000, 'unsynced', 'engine_temp', 90, 'good', 2, NULL, NULL, NULL, NULL, 5000, 'now');
      INSERT INTO alerts_shown VALUES ('${V}.hot.1', ${T0});`);
    old.close();
    const b = openBuffer();
    assert.deepEqual(b.stats(), { readings: 2, bytes: 2 * SCALAR, evicted: 0, nextSeq: 13 }, 'counted once, as it was adopted');
    assert.deepEqual(seqs(all(b)), [11]);
    assert.deepEqual(seqs(b.after(0, 100, true)), [11], 'the unsynced reading still waits for the clock');
    assert.deepEqual(seqs(b.append([sample('rpm')])), [13]);
    assert.equal(b.markAlertShown(`${V}.hot.1`, T0 + 1), false, 'an alert shown before the upgrade is not shown again');
    assert.deepEqual(b.correctClock({ source: 'gps', offsetMs: SYNC_UTC, boot: 'now' }), { corrected: 1, estimated: 0 });
    b.close();
    const file = new Database(path, { readonly: true });
    assert.equal(file.pragma('user_version', { simple: true }), 2);
    file.close();
  });
});

describe('ReadingBuffer when a write fails', () => {
  /**
   * Makes the buffer's writes fail inside their transaction, as a full disk does, through a
   * trigger made by a second connection; returns what lifts it.
   */
  function refuse(what: 'INSERT' | 'DELETE'): () => void {
    const db = new Database(path);
    db.exec(`CREATE TRIGGER refuse BEFORE ${what} ON readings BEGIN SELECT RAISE(ABORT, 'refused'); END`);
    return () => {
      db.exec('DROP TRIGGER refuse');
      db.close();
    };
  }

  it('leaves no trace of a failed append: the same samples get the same seqs later', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('rpm')]);
    const before = b.stats();
    const lift = refuse('INSERT');
    const samples = [sample('engine_temp'), sample('gps'), sample('speed')];
    assert.throws(() => b.append(samples), /refused/);
    assert.deepEqual(b.stats(), before, 'nextSeq, readings and bytes as before');
    lift();
    assert.deepEqual(seqs(b.append(samples)), [3, 4, 5], 'no seq gap');
    assert.deepEqual(seqs(all(b)), range(1, 5));
    b.close();
    assert.equal(openBuffer().stats().nextSeq, 6);
  });

  it('rolls back an eviction with the append that needed it', () => {
    const b = openBuffer({ maxBytes: 4 * SCALAR });
    b.append([sample('gps'), sample('speed')]);
    const before = b.stats();
    const lift = refuse('DELETE');
    const samples = [sample('engine_temp'), sample('engine_temp'), sample('engine_temp')];
    assert.throws(() => b.append(samples), /refused/, "the eviction's delete fails after the inserts");
    assert.deepEqual(b.stats(), before, 'nothing counted as evicted or added');
    lift();
    b.append(samples);
    assert.deepEqual(seqs(all(b)), [2, 3, 4, 5], 'the gps reading made room once the write went through');
    assert.equal(b.stats().evicted, 1);
  });

  it('deletes an acknowledged range whose delete failed with its next write', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('gps'), sample('rpm'), sample('speed')]);
    const lift = refuse('DELETE');
    assert.throws(() => b.acknowledge(1, 2), /refused/);
    assert.equal(b.stats().readings, 4, 'still buffered until deleted');
    lift();
    assert.deepEqual(seqs(b.append([sample('rpm')])), [5]);
    assert.deepEqual(seqs(all(b)), [3, 4, 5]);
    assert.deepEqual(b.stats(), { readings: 3, bytes: 3 * SCALAR, evicted: 0, nextSeq: 6 });
  });

  it('deletes it with the next acknowledge too, and says how many went', () => {
    const b = openBuffer();
    b.append([sample('speed'), sample('speed'), sample('speed')]);
    const lift = refuse('DELETE');
    assert.throws(() => b.acknowledge(1, 1), /refused/);
    lift();
    assert.equal(b.acknowledge(2, 2), 2);
    assert.deepEqual(seqs(all(b)), [3]);
  });

  it("checkpoint gives the WAL's space back", () => {
    const b = openBuffer();
    b.append(Array.from({ length: 500 }, () => sample('gps')));
    b.acknowledge(1, 500);
    assert.ok(statSync(`${path}-wal`).size > 0);
    b.checkpoint();
    assert.equal(statSync(`${path}-wal`).size, 0);
    assert.deepEqual(seqs(b.append([sample('speed')])), [501]);
  });
});
