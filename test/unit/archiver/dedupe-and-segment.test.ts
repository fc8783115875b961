import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { hourDir } from '../../../cloud/archiver/archive-keys.js';
import { DedupeState } from '../../../cloud/archiver/dedupe-state.js';
import { segmentContent } from '../../../cloud/archiver/segment.js';
import type { PositionedRecord } from '../../../cloud/sources/source.js';
import type { Reading } from '../../../shared/contract/reading.js';

const H = Date.UTC(2026, 10, 30, 8);
const HOUR = 3_600_000;

const reading = (vehicle: string, seq: number, ts: number): Reading => ({
  vehicle,
  seq,
  ts,
  clock: 'synced',
  sensor: 'engine_temp',
  value: seq,
  quality: 'good',
});

const record = (position: number, receivedAt: number, readings: Reading[]): PositionedRecord => ({
  vehicle: readings[0]!.vehicle,
  receivedAt,
  batch: { vehicle: readings[0]!.vehicle, headTs: readings.at(-1)!.ts, readings },
  offset: position,
  rebuild: false,
  lane: '0',
  position: String(position),
  size: 100,
});

describe('the dedupe state', () => {
  it('collapses contiguous seqs into one interval, joins gaps once filled, and refuses repeats', () => {
    const d = DedupeState.empty();
    for (const seq of [1, 2, 3, 7, 8, 5]) assert.equal(d.admit('v', seq), true);
    assert.deepEqual(d.toJson(), {
      v: [
        [1, 3],
        [5, 5],
        [7, 8],
      ],
    });
    for (const seq of [1, 3, 5, 8]) assert.equal(d.admit('v', seq), false);
    assert.equal(d.admit('v', 4), true);
    assert.equal(d.admit('v', 6), true);
    assert.deepEqual(d.toJson(), { v: [[1, 8]] });
    assert.equal(d.lowest('v'), 1);
  });

  it('forgets the lowest intervals but the first past its cap, so a very old repeat is kept rather than anything dropped', () => {
    const d = DedupeState.empty(3);
    for (const seq of [1, 3, 5, 7]) d.admit('v', seq);
    assert.deepEqual(d.toJson(), {
      v: [
        [1, 1],
        [5, 5],
        [7, 7],
      ],
    });
    assert.equal(d.admit('v', 3), true, 'forgotten: admitted again');
    assert.equal(d.admit('v', 7), false);
    assert.equal(d.lowest('v'), 1, 'the lowest seq archived is kept');
  });

  it('serializes equal states to equal JSON whatever order vehicles came in, and round-trips', () => {
    const a = DedupeState.empty();
    const b = DedupeState.empty();
    a.admit('x', 1);
    a.admit('y', 2);
    b.admit('y', 2);
    b.admit('x', 1);
    assert.equal(JSON.stringify(a.toJson()), JSON.stringify(b.toJson()));
    assert.deepEqual(DedupeState.fromJson(a.toJson()).toJson(), a.toJson());
  });
});

describe('a segment', () => {
  const records = [
    record(10, H + 10, [reading('v', 1, H + 1), reading('v', 2, H + HOUR + 1)]),
    // Late: event time an hour and more before its neighbours, received with them.
    record(11, H + HOUR + 20, [reading('w', 1, H - HOUR + 5)]),
    // A resent batch: the same readings again.
    record(12, H + HOUR + 30, [reading('v', 1, H + 1), reading('v', 2, H + HOUR + 1), reading('v', 3, H + HOUR + 2)]),
  ];

  it('puts each reading in the hour of its event time by default, late ones included, and drops repeats', () => {
    const c = segmentContent(records, DedupeState.empty(), 'event');
    assert.deepEqual([...c.hours.keys()].sort(), [hourDir(H - HOUR), hourDir(H), hourDir(H + HOUR)].sort());
    assert.deepEqual(
      c.hours.get(hourDir(H - HOUR))!.map(({ reading: r }) => [r.vehicle, r.seq]),
      [['w', 1]],
    );
    assert.deepEqual(
      c.hours.get(hourDir(H + HOUR))!.map(({ reading: r, receivedAt }) => [r.vehicle, r.seq, receivedAt]),
      [
        ['v', 2, H + 10],
        ['v', 3, H + HOUR + 30],
      ],
    );
    assert.equal(c.readings, 4);
    assert.equal(c.duplicates, 2);
    assert.equal(hourDir(H), 'dt=2026-11-30/hour=08');
  });

  it('puts each reading in the hour the gateway received it with partitioning by receive time', () => {
    const c = segmentContent(records, DedupeState.empty(), 'received');
    assert.deepEqual([...c.hours.keys()].sort(), [hourDir(H), hourDir(H + HOUR)].sort());
    assert.deepEqual(
      c.hours.get(hourDir(H))!.map(({ reading: r }) => [r.vehicle, r.seq]),
      [
        ['v', 1],
        ['v', 2],
      ],
    );
  });

  it('is a pure function of the state before it: the same records from the same state give the same rows and state', () => {
    const before = DedupeState.empty();
    before.admit('v', 1);
    const a = segmentContent(records, before, 'event');
    const b = segmentContent(records, DedupeState.fromJson(before.toJson()), 'event');
    assert.deepEqual([...a.hours], [...b.hours]);
    assert.deepEqual(a.after.toJson(), b.after.toJson());
    assert.deepEqual(before.toJson(), { v: [[1, 1]] }, 'the state before is left as it was');
    assert.equal(a.duplicates, 3);
  });
});
