import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceClock, type ClockHost, type Sync } from '../../../agent/device-clock.js';
import type { Sample } from '../../../shared/contract/reading.js';
import { waitFor } from '../../support/harness.js';

/** A Pi that booted 30 s ago with no real-time clock: its system clock started at 1970. */
class Board implements ClockHost {
  mono = 30_000;
  wall = 30_000;
  ntpFile = false;
  monotonicMs = () => this.mono;
  wallMs = () => this.wall;
  bootId = () => 'boot-b';
  exists = () => this.ntpFile;
  advance(ms: number): void {
    this.mono += ms;
    this.wall += ms;
  }
}

const UTC = Date.UTC(2026, 10, 25, 12);
const hostSample = (board: Board): Sample => ({ ts: board.wallMs(), clock: 'unsynced', sensor: 'engine_temp', value: 90, quality: 'good' });

function syncClock(board: Board, holdMs = 60_000) {
  const clock = new DeviceClock({ trust: 'sync', syncedFile: '/run/ntp-synced', holdMs }, board);
  const syncs: Sync[] = [];
  clock.on('synced', (s: Sync) => syncs.push(s));
  return { clock, syncs };
}

describe('DeviceClock', () => {
  it('with a trusted system clock vouches for host stamps and never holds', () => {
    const board = new Board();
    board.wall = UTC;
    const clock = new DeviceClock({ trust: 'system', syncedFile: '/x', holdMs: 60_000 }, board);
    const s = clock.stamp(hostSample(board));
    assert.deepEqual({ ts: s.ts, clock: s.clock, unsynced: s.unsynced }, { ts: UTC, clock: 'synced', unsynced: undefined });
    assert.deepEqual(clock.status(), { trust: 'system', synced: true, source: 'system', holding: false });
  });

  it('before a sync marks host stamps with their place on the monotonic line and holds them', () => {
    const board = new Board();
    const { clock } = syncClock(board);
    const sample = hostSample(board);
    board.advance(40); // the agent stamps a moment after the sensor did
    const s = clock.stamp(sample);
    assert.equal(s.clock, 'unsynced');
    assert.equal(s.ts, 30_000, 'the time is left as the host had it');
    assert.deepEqual(s.unsynced, { mono: 30_000, boot: 'boot-b' });
    assert.equal(clock.holding(), true);
    assert.deepEqual(clock.status(), { trust: 'sync', synced: false, holding: true });
  });

  it('keeps authoritative stamps (GPS UTC, a simulation) as they are', () => {
    const { clock } = syncClock(new Board());
    const s = clock.stamp({ ts: UTC, clock: 'synced', sensor: 'gps', value: 50, quality: 'good', position: { lat: 1, lon: 2, heading: 3, fix: '3d' } });
    assert.equal(s.ts, UTC);
    assert.equal(s.unsynced, undefined);
  });

  it('syncs from GPS: emits the offset once and rebases later host stamps onto GPS time', () => {
    const board = new Board();
    const { clock, syncs } = syncClock(board);
    clock.gpsTime(UTC);
    assert.deepEqual(syncs, [{ source: 'gps', offsetMs: UTC - 30_000, boot: 'boot-b' }]);
    board.advance(1500);
    const s = clock.stamp(hostSample(board));
    assert.deepEqual({ ts: s.ts, clock: s.clock }, { ts: UTC + 1500, clock: 'synced' });
    board.advance(1000);
    clock.gpsTime(UTC + 2_500 + 7); // a later fix moves the offset; no second event
    assert.equal(syncs.length, 1);
    assert.equal(clock.stamp(hostSample(board)).ts, UTC + 2_507);
    assert.equal(clock.holding(), false);
    assert.equal(clock.status().source, 'gps');
  });

  it('syncs from NTP when the marker file appears, then trusts the system clock', async () => {
    const board = new Board();
    const { clock, syncs } = syncClock(board);
    clock.start();
    try {
      assert.equal(syncs.length, 0);
      // timesyncd stepped the clock to UTC and touched its marker
      board.wall = UTC;
      board.ntpFile = true;
      await waitFor('the NTP sync', () => syncs.length === 1, 3000, 20);
      assert.deepEqual(syncs[0], { source: 'ntp', offsetMs: UTC - 30_000, boot: 'boot-b' });
      const s = clock.stamp(hostSample(board));
      assert.deepEqual({ ts: s.ts, clock: s.clock }, { ts: UTC, clock: 'synced' });
    } finally {
      clock.stop();
    }
  });

  it('releases held readings when no sync comes within the hold', async () => {
    const board = new Board();
    const { clock } = syncClock(board, 50);
    let released = false;
    clock.on('release', () => (released = true));
    clock.start();
    try {
      assert.equal(clock.holding(), true);
      await waitFor('the end of the hold', () => released, 2000, 20);
      assert.equal(clock.holding(), false);
      assert.equal(clock.synced(), false);
      assert.equal(clock.stamp(hostSample(board)).clock, 'unsynced', 'still flagged: the time is a guess');
    } finally {
      clock.stop();
    }
  });

  it('refuses a negative hold', () => {
    assert.throws(() => new DeviceClock({ trust: 'sync', syncedFile: '/x', holdMs: -1 }, new Board()), /hold must be ≥ 0 ms/);
  });
});
