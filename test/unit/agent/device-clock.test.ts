import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { DeviceClock, GPS_TIME_TOLERANCE_MS, type ClockHost, type GpsRefusal, type Sync } from '../../../agent/device-clock.js';
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

function syncClock(board: Board, holdMs = 60_000, newestStored?: number) {
  const clock = new DeviceClock({ trust: 'sync', syncedFile: '/run/ntp-synced', holdMs }, board, () => newestStored);
  const syncs: Sync[] = [];
  const refusals: GpsRefusal[] = [];
  clock.on('synced', (s: Sync) => syncs.push(s));
  clock.on('gpsRefused', (r: GpsRefusal) => refusals.push(r));
  return { clock, syncs, refusals };
}

const YEAR_1024_WEEKS = 1024 * 7 * 86_400_000;

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
    const s = clock.stamp({
      ts: UTC,
      clock: 'synced',
      sensor: 'gps',
      value: 50,
      quality: 'good',
      position: { lat: 1, lon: 2, heading: 3, fix: '3d' },
    });
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

  it('refuses a GPS time that disagrees with the system clock NTP set, and keeps that clock', async () => {
    const board = new Board();
    board.wall = UTC;
    board.ntpFile = true;
    const { clock, syncs, refusals } = syncClock(board);
    clock.start();
    try {
      assert.equal(clock.status().source, 'ntp');
      assert.equal(clock.gpsTime(UTC - 2 * 86_400_000), 'GPS time 2026-11-23T12:00:00.000Z is 2.0 days behind the system clock (NTP)');
      assert.equal(clock.gpsTime(UTC + 3 * 3_600_000 + 1), 'GPS time 2026-11-25T15:00:00.001Z is 3.0 h ahead of the system clock (NTP)');
      assert.deepEqual(
        refusals.map((r) => r.first),
        [true, false],
        'one run of refusals',
      );
      assert.equal(clock.status().gpsRefused, 'GPS time 2026-11-25T15:00:00.001Z is 3.0 h ahead of the system clock (NTP)');
      // A receiver that has not yet received the leap seconds is 18 s off: taken.
      assert.equal(clock.gpsTime(UTC + 18_000), undefined);
      assert.equal(clock.status().gpsRefused, undefined);
      assert.deepEqual(
        syncs.map((s) => s.source),
        ['ntp'],
      );
      assert.equal(clock.stamp(hostSample(board)).ts, UTC, 'host stamps keep the system time');
    } finally {
      clock.stop();
    }
  });

  it('once synced from GPS, refuses a GPS time that jumps (a receiver restarted with a wrong date) and keeps the one in use', () => {
    const board = new Board();
    const { clock, syncs, refusals } = syncClock(board);
    assert.equal(clock.gpsTime(UTC), undefined);
    board.advance(1000);
    const wrong = UTC + 1000 - YEAR_1024_WEEKS;
    assert.equal(clock.gpsTime(wrong), `GPS time ${new Date(wrong).toISOString()} is 19.6 years behind the GPS time in use`);
    assert.deepEqual(refusals, [{ reason: clock.status().gpsRefused, first: true }]);
    assert.equal(clock.stamp(hostSample(board)).ts, UTC + 1000, 'still the first GPS time plus the monotonic clock');
    // Within the tolerance the receiver keeps the offset current, and the refusal is over.
    board.advance(1000);
    assert.equal(clock.gpsTime(UTC + 2000 + GPS_TIME_TOLERANCE_MS - 1), undefined);
    assert.equal(clock.status().gpsRefused, undefined);
    assert.equal(syncs.length, 1);
  });

  it('refuses, before any sync, a GPS time behind the newest stored reading; a later one syncs', () => {
    const board = new Board();
    const newest = UTC - 3_600_000;
    const { clock, syncs } = syncClock(board, 60_000, newest);
    assert.equal(
      clock.gpsTime(newest - 2 * 86_400_000),
      'GPS time 2026-11-23T11:00:00.000Z is 2.0 days behind the newest stored reading (2026-11-25T11:00:00.000Z)',
    );
    assert.deepEqual(clock.status(), {
      trust: 'sync',
      synced: false,
      holding: true,
      gpsRefused: 'GPS time 2026-11-23T11:00:00.000Z is 2.0 days behind the newest stored reading (2026-11-25T11:00:00.000Z)',
    });
    assert.equal(syncs.length, 0, 'readings stay held');
    // Days later than the newest reading is fine: the truck may have stood still for a month.
    assert.equal(clock.gpsTime(UTC + 30 * 86_400_000), undefined);
    assert.deepEqual(
      syncs.map((s) => s.source),
      ['gps'],
    );
  });

  it('refuses a negative hold', () => {
    assert.throws(() => new DeviceClock({ trust: 'sync', syncedFile: '/x', holdMs: -1 }, new Board()), /hold must be ≥ 0 ms/);
  });
});
