import { afterAll, beforeAll, describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeviceClock } from '../../agent/device-clock.js';
import { GpsSensor } from '../../hardware/gps/gps-sensor.js';
import { parseNmea } from '../../hardware/gps/nmea.js';
import { quantize } from '../../shared/contract/codec.js';
import type { Sample } from '../../shared/contract/reading.js';
import { NmeaGpsEmulator, type NmeaGpsEmulatorOptions } from '../../simulators/nmea-gps-emulator.js';
import { Random } from '../../simulators/random.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { tempDir, waitFor } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';

const DAY_MS = 86_400_000;

/** Where the model truck is: the emulator's source of truth, asked afresh for any time. */
class Route {
  // Started in the past, so the truck is cruising by now (the drive cycle idles first).
  readonly start = Date.now() - 200_000;
  constructor(readonly seed: number) {}

  model(): TruckModel {
    return new TruckModel({ seed: this.seed, startTs: this.start });
  }

  at(ts: number) {
    return this.model().advance(ts);
  }

  /** A sample stamped with GPS UTC holds the model's position, speed and heading at that time. */
  check(sample: Sample): void {
    const ref = this.at(sample.ts);
    const p = sample.position!;
    const at = new Date(sample.ts).toISOString();
    // The emulator writes 5 decimals of a minute: 2 cm.
    assert.ok(Math.abs(p.lat - ref.lat) < 1e-6 && Math.abs(p.lon - ref.lon) < 1e-6, `${at}: ${p.lat},${p.lon} vs ${ref.lat},${ref.lon}`);
    assert.ok(Math.abs(sample.value - quantize(ref.speedKmh)) <= 0.011, `${at}: speed ${sample.value} vs ${ref.speedKmh}`);
    assert.ok(angle(p.heading, ref.heading) <= 0.06, `${at}: heading ${p.heading} vs ${ref.heading}`);
  }

  /** The fix time (a multiple of `periodMs` before `receivedAt`) whose position the sample holds. */
  fixTime(sample: Sample, receivedAt: number, periodMs = 1000): number {
    const p = sample.position!;
    for (let ts = Math.floor(receivedAt / periodMs) * periodMs; ts > receivedAt - 4000; ts -= periodMs) {
      const ref = this.at(ts);
      if (Math.abs(p.lat - ref.lat) < 1e-6 && Math.abs(p.lon - ref.lon) < 1e-6) return ts;
    }
    assert.fail(`${p.lat},${p.lon} is nowhere on the route in the 4 s before ${new Date(receivedAt).toISOString()}`);
  }

  /**
   * A sample whose speed and heading were derived from the positions of two consecutive
   * fixes: they are the truck's average over that interval.
   */
  checkDerived(sample: Sample, fixTs: number, periodMs = 1000): void {
    const [a, b] = [this.at(fixTs - periodMs), this.at(fixTs)];
    const at = new Date(fixTs).toISOString();
    assert.ok(Math.abs(sample.value - (a.speedKmh + b.speedKmh) / 2) <= 1, `${at}: speed ${sample.value} vs ${a.speedKmh}..${b.speedKmh}`);
    if (sample.value >= 10) {
      const mid = b.heading + (((((a.heading - b.heading) % 360) + 540) % 360) - 180) / 2;
      assert.ok(angle(sample.position!.heading, mid) <= 3, `${at}: heading ${sample.position!.heading} vs ${a.heading}..${b.heading}`);
    }
  }
}

function angle(a: number, b: number): number {
  const d = Math.abs(a - b) % 360;
  return Math.min(d, 360 - d);
}

interface Received {
  sample: Sample;
  at: number;
}

/** A GpsSensor on one end of a fresh socat pty pair, an emulated receiver on the other. */
class Rig {
  readonly got: Received[] = [];
  /** GPS times the sensor offered the clock, and when. */
  readonly times: { utc: number; at: number }[] = [];
  sensor!: GpsSensor;
  emulator!: NmeaGpsEmulator;
  /** When the receiver was powered on. */
  startedAt = 0;
  pty!: PtyPair;
  private dir!: string;

  constructor(
    readonly route: Route,
    private readonly emulatorOpts: Omit<NmeaGpsEmulatorOptions, 'path' | 'model'>,
    /** Stands for the agent's clock: answers each GPS time with why it is refused, if it is. */
    private readonly verdict: (utc: number) => string | undefined = () => undefined,
  ) {}

  async start(name: string): Promise<this> {
    this.dir = tempDir(`fleet-gps-${name}-`);
    this.pty = await ptyPair(this.dir, 'gps');
    this.sensor = new GpsSensor({
      path: this.pty.a,
      reopenMs: 250,
      onTime: (utc) => {
        this.times.push({ utc, at: Date.now() });
        return this.verdict(utc);
      },
    });
    await this.sensor.start((sample) => this.got.push({ sample, at: Date.now() }));
    this.emulator = new NmeaGpsEmulator({ path: this.pty.b, model: this.route.model(), ...this.emulatorOpts });
    await this.emulator.start();
    this.startedAt = Date.now();
    return this;
  }

  async stop(): Promise<void> {
    await this.sensor?.stop();
    await this.emulator?.stop();
    await this.pty?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Waits for `n` more samples than there are now, and returns them. */
  async next(n: number, timeoutMs = 8000): Promise<Received[]> {
    const from = this.got.length;
    await waitFor(`${n} more GPS samples`, () => this.got.length >= from + n, timeoutMs);
    return this.got.slice(from);
  }

  detail(): string {
    return this.sensor.health().detail ?? '';
  }
}

/**
 * The GPS driver on a real serial line: GpsSensor on one end of a socat pty pair, the NMEA
 * emulator on the other. The tests run in order on one receiver, as its life goes on.
 */
describe('GPS over a serial line (socat pty)', () => {
  const route = new Route(7);
  const rig = new Rig(route, { noFixMs: 3000 });
  const { got, times } = rig;
  const good = () => got.filter((g) => g.sample.quality === 'good');

  beforeAll(() => rig.start('standard'));
  afterAll(() => rig.stop());

  it('while the receiver searches: health ok with "no satellite fix", and no samples', async () => {
    // No position means nothing to report: a sample with a made-up position would be worse than none.
    await waitFor('health ok without a fix', () => rig.detail() === 'no satellite fix', 3000);
    assert.equal(rig.sensor.health().state, 'ok');
    assert.equal(got.length, 0);
    assert.equal(times.length, 0, 'the receiver clock (1980) is not offered before a fix');
  });

  it('with a 3D fix: one good sample a second, on the model route, stamped with GPS UTC', async () => {
    const samples = (await rig.next(4)).map((g) => g.sample);
    for (const [i, s] of samples.entries()) {
      assert.equal(s.sensor, 'gps');
      assert.equal(s.quality, 'good');
      assert.equal(s.clock, 'synced');
      assert.equal(s.position!.fix, '3d');
      assert.equal(s.ts % 1000, 0, 'receivers report on the whole second');
      if (i > 0) assert.equal(s.ts - samples[i - 1]!.ts, 1000);
      route.check(s);
    }
    assert.ok(samples[0]!.value > 10, `the truck should be moving, got ${samples[0]!.value} km/h`);
    // The cycle is reported once its burst is over: GPS time, a fraction of a second before now.
    for (const { sample, at } of got) assert.ok(at - sample.ts >= 0 && at - sample.ts < 1500, `received ${at - sample.ts} ms after its ts`);
    // onTime comes as the burst arrives, with the same UTC the samples carry.
    const sampleTs = new Set(samples.map((s) => s.ts));
    assert.ok(times.filter((t) => sampleTs.has(t.utc)).length >= 3);
    for (const t of times) assert.ok(t.at - t.utc >= 0 && t.at - t.utc < 300, `onTime ${t.at - t.utc} ms late`);
    assert.equal(rig.sensor.health().state, 'ok');
  });

  it('bad checksums: counted in rejected, with the reason, and good samples resume', async () => {
    const before = rig.sensor.health().rejected;
    rig.emulator.corruptNext(3);
    await waitFor('3 rejected', () => rig.sensor.health().rejected >= before + 3, 3000);
    assert.match(rig.detail(), /refused checksum: checksum [0-9A-F]{2} does not match/);
    const resumed = (await rig.next(2)).map((g) => g.sample);
    for (const s of resumed) route.check(s);
    assert.equal(rig.sensor.health().rejected, before + 3);
    assert.equal(rig.sensor.health().state, 'ok');
  });

  it('garbage bytes (a device at the wrong baud rate): degraded while nothing else comes, then survived', async () => {
    const rng = new Random(99);
    // Random bytes with the odd line end and `$`, so some garbage looks like the start of a sentence.
    const garbage = () =>
      Buffer.from(Array.from({ length: 100 }, () => (rng.next() < 0.02 ? 0x0a : rng.next() < 0.02 ? 0x24 : rng.int(0, 255))));
    rig.emulator.silence(4500);
    const until = Date.now() + 4500;
    const writing = (async () => {
      while (Date.now() < until) {
        await rig.emulator.writeRaw(garbage());
        await sleep(100);
      }
    })();
    await waitFor('degraded by garbage', () => rig.sensor.health().state === 'degraded', 6000);
    assert.match(rig.detail(), /only unreadable input for .* \(wrong baud rate\?\)/);
    await writing;
    const resumed = (await rig.next(2)).map((g) => g.sample);
    for (const s of resumed) {
      assert.equal(s.quality, 'good');
      route.check(s);
    }
    assert.equal(rig.sensor.health().state, 'ok');
  });

  it('a sentence split across two reads still parses', async () => {
    const before = rig.sensor.health().rejected;
    const line = await rig.emulator.splitNext(200);
    const r = parseNmea(line);
    assert.ok(r.ok && r.sentence.type === 'GGA' && r.sentence.timeMs !== undefined, line);
    const tod = r.sentence.timeMs;
    await waitFor('the sample of the split cycle', () => got.some((g) => g.sample.ts % DAY_MS === tod), 3000);
    assert.equal(rig.sensor.health().rejected, before, 'neither half was refused');
  });

  it('5 s of silence: degraded, then ok again when data resumes', async () => {
    rig.emulator.silence(5000);
    const t0 = Date.now();
    await waitFor('degraded', () => rig.sensor.health().state === 'degraded', 6000);
    assert.match(rig.detail(), /no data from .* for \d/);
    const count = good().length;
    await waitFor('ok again', () => rig.sensor.health().state === 'ok', 6000);
    assert.ok(Date.now() - t0 >= 4000, 'ok only once the receiver talks again');
    await waitFor('good samples again', () => good().length > count, 3000);
  });

  it('unplugged: down; plugged back in: it reopens by itself and samples resume', async () => {
    await rig.pty.stop();
    await waitFor('down', () => rig.sensor.health().state === 'down', 3000);
    assert.match(rig.detail(), /disconnected/);
    // It keeps trying while the device is gone.
    await waitFor('a failed reopen', () => /cannot open/.test(rig.detail()), 3000);
    assert.equal(rig.sensor.health().state, 'down');
    await rig.emulator.stop();

    await rig.pty.restart();
    // A replugged receiver boots again: banner, a short search, then a fix.
    rig.emulator = new NmeaGpsEmulator({ path: rig.pty.b, model: route.model(), noFixMs: 1000 });
    await rig.emulator.start();
    await waitFor('reopened', () => rig.sensor.health().state === 'ok', 4000);
    const from = got.length;
    await waitFor('a good sample after the replug', () => got.slice(from).some((g) => g.sample.quality === 'good'), 6000);
    for (const { sample } of got.slice(from)) {
      assert.equal(sample.clock, 'synced');
      route.check(sample);
    }
  });
});

describe('GPS: a GNS-only receiver (position and time; no speed, no date)', () => {
  const route = new Route(11);
  const rig = new Rig(route, { profile: 'gns-only', noFixMs: 1500 });

  beforeAll(() => rig.start('gns'));
  afterAll(() => rig.stop());

  it('gives a sample for every fix after the first, speed and heading from the positions, and says what it lacks', async () => {
    const fixes = await rig.next(4);
    for (const { sample, at } of fixes) {
      assert.equal(sample.position!.fix, '3d', 'GNS with an altitude');
      // Without a date the time is the system clock's: the agent's clock vouches for it or corrects it.
      assert.equal(sample.clock, 'unsynced');
      assert.ok(Math.abs(sample.ts - at) < 100, 'stamped as it arrived');
      // A speed worked out from positions is less sure than a receiver's Doppler speed.
      assert.equal(sample.quality, 'uncertain');
      route.checkDerived(sample, route.fixTime(sample, at));
    }
    const ts = fixes.map(({ sample, at }) => route.fixTime(sample, at));
    assert.deepEqual(
      ts.slice(1).map((t, i) => t - ts[i]!),
      [1000, 1000, 1000],
      'one sample per fix, none skipped',
    );
    assert.equal(rig.times.length, 0, 'no date, so no GPS time for the clock');
    const h = rig.sensor.health();
    assert.equal(h.state, 'ok');
    assert.match(h.detail ?? '', /speed derived from positions \(no speed in RMC or VTG\)/);
    assert.match(h.detail ?? '', /no date from the receiver \(no RMC or ZDA\)/);
    assert.equal(h.rejected, 0);
  });
});

describe('GPS: a GGA + GSA + ZDA receiver (the date in ZDA, no speed)', () => {
  const route = new Route(12);
  const rig = new Rig(route, { profile: 'gga-gsa-zda', noFixMs: 1500 });

  beforeAll(() => rig.start('gga-gsa-zda'));
  afterAll(() => rig.stop());

  it('gives samples stamped with GPS UTC from ZDA, the speed derived from positions, and offers the time to the clock', async () => {
    const fixes = await rig.next(3);
    for (const { sample } of fixes) {
      assert.equal(sample.clock, 'synced');
      assert.equal(sample.ts % 1000, 0);
      assert.equal(sample.quality, 'uncertain');
      const p = route.at(sample.ts);
      assert.ok(Math.abs(sample.position!.lat - p.lat) < 1e-6 && Math.abs(sample.position!.lon - p.lon) < 1e-6);
      route.checkDerived(sample, sample.ts);
    }
    const offered = new Set(rig.times.map((t) => t.utc));
    assert.ok(
      fixes.every(({ sample }) => offered.has(sample.ts)),
      'each fix time offered to the clock',
    );
    for (const t of rig.times) assert.ok(t.at - t.utc >= 0 && t.at - t.utc < 300, `onTime ${t.at - t.utc} ms late`);
    assert.match(rig.detail(), /^speed derived from positions \(no speed in RMC or VTG\)$/);
  });
});

describe('GPS: a GGA + VTG + ZDA receiver (no RMC)', () => {
  const route = new Route(13);
  const rig = new Rig(route, { profile: 'gga-vtg-zda', noFixMs: 1500 });

  beforeAll(() => rig.start('gga-vtg-zda'));
  afterAll(() => rig.stop());

  it('gives good samples stamped with GPS UTC (date from ZDA, speed from VTG), and offers the time to the clock', async () => {
    const fixes = await rig.next(3);
    for (const { sample } of fixes) {
      assert.equal(sample.clock, 'synced');
      assert.equal(sample.quality, 'good');
      route.check(sample);
    }
    const offered = new Set(rig.times.map((t) => t.utc));
    assert.ok(
      fixes.every(({ sample }) => offered.has(sample.ts)),
      'each fix time offered to the clock',
    );
    const h = rig.sensor.health();
    assert.deepEqual({ state: h.state, detail: h.detail, rejected: h.rejected }, { state: 'ok', detail: undefined, rejected: 0 });
  });
});

describe('GPS: a receiver that zero-fills its no-fix sentences (MediaTek), with proprietary chatter', () => {
  const route = new Route(14);
  const rig = new Rig(route, { profile: 'zero-filled', noFixMs: 4000, proprietary: true });
  const nullIsland = () => rig.got.filter((g) => Math.abs(g.sample.position!.lat) < 1 && Math.abs(g.sample.position!.lon) < 1);

  beforeAll(() => rig.start('zero-filled'));
  afterAll(() => rig.stop());

  it('while it searches: no sample at 0°, 0° and "no satellite fix"; its placeholders and long proprietary lines are ignored, not refused', async () => {
    // Two seconds of its four searching: several zero-filled bursts, each with a 000000 date, and the proprietary lines.
    await sleep(Math.max(0, rig.startedAt + 2500 - Date.now()));
    assert.deepEqual(nullIsland(), []);
    assert.equal(rig.got.length, 0, 'no position without a fix');
    const h = rig.sensor.health();
    assert.equal(h.rejected, 0, `the date 000000, $PUBX and $PGLOR are not corrupt input: ${h.detail}`);
    assert.ok((h.ignored ?? 0) >= 4, `ignored ${h.ignored}`);
    assert.equal(h.detail, 'no satellite fix');
  });

  it('with a fix: samples on the route with GPS UTC; refused stays for corrupt input only', async () => {
    const fixes = await rig.next(3);
    for (const { sample } of fixes) {
      assert.equal(sample.clock, 'synced');
      route.check(sample);
    }
    const ignored = rig.sensor.health().ignored ?? 0;
    await rig.next(2);
    assert.ok((rig.sensor.health().ignored ?? 0) >= ignored + 3, 'a $PUBX, a $PGLOR and a $PMTK a second');
    assert.equal(rig.sensor.health().rejected, 0);
    rig.emulator.corruptNext(2);
    await waitFor('2 refused', () => rig.sensor.health().rejected === 2, 3000);
    assert.match(rig.detail(), /refused checksum/);
  });

  it('restarted mid-run with a garbage date (2006-06-28): nothing at 0°, 0°, nothing dated 2006, no such time offered', async () => {
    const from = rig.got.length;
    rig.emulator.reset(3000, Date.UTC(2006, 5, 28, 12));
    await waitFor('health says no fix', () => rig.detail().startsWith('no satellite fix'), 3000);
    await waitFor('a fix again', () => rig.got.length > from + 2, 10_000);
    assert.deepEqual(nullIsland(), []);
    const recent = Date.now() - DAY_MS;
    for (const { sample } of rig.got) {
      assert.ok(sample.ts > recent, `sample dated ${new Date(sample.ts).toISOString()}`);
      assert.equal(sample.clock, 'synced');
      route.check(sample);
    }
    assert.deepEqual(
      rig.times.filter((t) => t.utc < recent).map((t) => new Date(t.utc).toISOString()),
      [],
    );
  });
});

describe('GPS: a 5 Hz receiver that blanks every field, the time too, when it loses the fix', () => {
  const route = new Route(15);
  const rig = new Rig(route, { profile: 'blank-on-loss', noFixMs: 1500, rateHz: 5 });

  beforeAll(() => rig.start('blank'));
  afterAll(() => rig.stop());

  it('with a fix: five samples a second with GPS UTC', async () => {
    const fixes = (await rig.next(6)).map((g) => g.sample);
    for (const [i, s] of fixes.entries()) {
      assert.equal(s.clock, 'synced');
      if (i > 0) assert.equal(s.ts - fixes[i - 1]!.ts, 200);
      route.check(s);
    }
  });

  it('losing the fix: the last fix is still reported, then no samples and "no satellite fix"', async () => {
    await rig.next(1);
    rig.emulator.loseFix(3000);
    const lastFix = rig.emulator.lastFixTs!;
    // The blank burst 200 ms after it must not take its place.
    await waitFor(
      `the sample of the last fix (${new Date(lastFix).toISOString()})`,
      () => rig.got.some((g) => g.sample.ts === lastFix),
      2000,
    );
    await waitFor('health says no fix', () => rig.detail() === 'no satellite fix', 2000);
    const count = rig.got.length;
    await sleep(1000);
    assert.equal(rig.got.length, count, 'no samples without a fix');
    assert.equal(rig.detail(), 'no satellite fix');
    assert.equal(rig.sensor.health().rejected, 0, 'blank sentences are not corrupt');
  });

  it('the fix back: samples resume and health is plain ok', async () => {
    const fixes = await rig.next(3, 6000);
    for (const { sample } of fixes) route.check(sample);
    await waitFor('ok without detail', () => rig.sensor.health().detail === undefined, 2000);
  });
});

describe('GPS: a receiver past its week rollover (dates 1024 weeks back)', () => {
  const route = new Route(16);
  const dir = tempDir('fleet-gps-rollover-clock-');
  // The agent's clock on a board without a real-time clock, before any sync.
  const clock = new DeviceClock({ trust: 'sync', syncedFile: join(dir, 'never-synced'), holdMs: 0 });
  const rig = new Rig(route, { profile: 'week-rollover', noFixMs: 1500 }, (utc) => clock.gpsTime(utc));

  beforeAll(() => rig.start('rollover'));
  afterAll(async () => {
    await rig.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('corrects the date: samples and the clock get today, and health says why', async () => {
    const fixes = await rig.next(3);
    for (const { sample, at } of fixes) {
      assert.equal(sample.clock, 'synced');
      assert.ok(Math.abs(sample.ts - at) < 1500, `sample dated ${new Date(sample.ts).toISOString()}`);
      route.check(sample);
    }
    assert.ok(rig.times.length > 0);
    for (const t of rig.times)
      assert.ok(
        t.at - t.utc >= 0 && t.at - t.utc < 300,
        `GPS time ${new Date(t.utc).toISOString()} offered at ${new Date(t.at).toISOString()}`,
      );
    assert.equal(clock.synced(), true);
    const now = clock.stamp({ ts: Date.now(), clock: 'unsynced', sensor: 'engine_temp', value: 90, quality: 'good' });
    assert.ok(Math.abs(now.ts - Date.now()) < 1000, `the clock says ${new Date(now.ts).toISOString()}`);
    assert.equal(rig.sensor.health().state, 'ok');
    assert.match(rig.detail(), /receiver dates 1024 weeks behind, corrected \(GPS week rollover\)/);
  });
});
