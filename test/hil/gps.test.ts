import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { GpsSensor } from '../../hardware/gps/gps-sensor.js';
import { parseNmea } from '../../hardware/gps/nmea.js';
import { quantize } from '../../shared/contract/codec.js';
import type { Sample } from '../../shared/contract/reading.js';
import { NmeaGpsEmulator } from '../../simulators/nmea-gps-emulator.js';
import { Random } from '../../simulators/random.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { tempDir, waitFor } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';

/**
 * The GPS driver on a real serial line: GpsSensor on one end of a socat pty pair, the NMEA
 * emulator on the other. The tests run in order on one receiver, as its life goes on.
 */
describe('GPS over a serial line (socat pty)', () => {
  const SEED = 7;
  // Started in the past, so the truck is cruising by now (the drive cycle idles first).
  const START = Date.now() - 200_000;
  const DAY_MS = 86_400_000;
  const model = new TruckModel({ seed: SEED, startTs: START });
  const got: { sample: Sample; at: number }[] = [];
  const times: { utc: number; at: number }[] = [];
  let dir: string;
  let pty: PtyPair;
  let sensor: GpsSensor;
  let emulator: NmeaGpsEmulator;

  const good = () => got.filter((g) => g.sample.quality === 'good');
  /** Waits for `n` more samples than there are now, and returns them. */
  async function next(n: number, timeoutMs = 5000) {
    const from = got.length;
    await waitFor(`${n} more GPS samples`, () => got.length >= from + n, timeoutMs);
    return got.slice(from);
  }

  function onRoute(sample: Sample): void {
    const ref = new TruckModel({ seed: SEED, startTs: START }).advance(sample.ts);
    const p = sample.position!;
    const at = new Date(sample.ts).toISOString();
    // The emulator writes 5 decimals of a minute: 2 cm.
    assert.ok(Math.abs(p.lat - ref.lat) < 1e-6 && Math.abs(p.lon - ref.lon) < 1e-6, `${at}: ${p.lat},${p.lon} vs ${ref.lat},${ref.lon}`);
    assert.ok(Math.abs(sample.value - quantize(ref.speedKmh)) <= 0.011, `${at}: speed ${sample.value} vs ${ref.speedKmh}`);
    const dh = Math.abs(p.heading - ref.heading) % 360;
    assert.ok(Math.min(dh, 360 - dh) <= 0.06, `${at}: heading ${p.heading} vs ${ref.heading}`);
  }

  before(async () => {
    dir = tempDir('fleet-gps-hil-');
    pty = await ptyPair(dir, 'gps');
    sensor = new GpsSensor({ path: pty.a, reopenMs: 250, onTime: (utc) => times.push({ utc, at: Date.now() }) });
    await sensor.start((sample) => got.push({ sample, at: Date.now() }));
    emulator = new NmeaGpsEmulator({ path: pty.b, model, noFixMs: 3000 });
    await emulator.start();
  });

  after(async () => {
    await sensor?.stop();
    await emulator?.stop();
    await pty?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('while the receiver searches: health ok with "no satellite fix", and no samples', async () => {
    // No position means nothing to report: a sample with a made-up position would be worse than none.
    await waitFor('health ok without a fix', () => sensor.health().detail === 'no satellite fix', 3000);
    assert.equal(sensor.health().state, 'ok');
    assert.equal(got.length, 0);
    assert.equal(times.length, 0, 'the receiver clock (1980) is not offered before a fix');
  });

  it('with a 3D fix: one good sample a second, on the model route, stamped with GPS UTC', async () => {
    const samples = (await next(4, 8000)).map((g) => g.sample);
    for (const [i, s] of samples.entries()) {
      assert.equal(s.sensor, 'gps');
      assert.equal(s.quality, 'good');
      assert.equal(s.clock, 'synced');
      assert.equal(s.position!.fix, '3d');
      assert.equal(s.ts % 1000, 0, 'receivers report on the whole second');
      if (i > 0) assert.equal(s.ts - samples[i - 1]!.ts, 1000);
      onRoute(s);
    }
    assert.ok(samples[0]!.value > 10, `the truck should be moving, got ${samples[0]!.value} km/h`);
    // The cycle is reported once its burst is over: GPS time, a fraction of a second before now.
    for (const { sample, at } of got) assert.ok(at - sample.ts >= 0 && at - sample.ts < 1500, `received ${at - sample.ts} ms after its ts`);
    // onTime comes as the RMC arrives, with the same UTC the samples carry.
    const sampleTs = new Set(samples.map((s) => s.ts));
    assert.ok(times.filter((t) => sampleTs.has(t.utc)).length >= 3);
    for (const t of times) assert.ok(t.at - t.utc >= 0 && t.at - t.utc < 300, `onTime ${t.at - t.utc} ms late`);
    assert.equal(sensor.health().state, 'ok');
  });

  it('bad checksums: counted in rejected, with the reason, and good samples resume', async () => {
    const before = sensor.health().rejected;
    emulator.corruptNext(3);
    await waitFor('3 rejected', () => sensor.health().rejected >= before + 3, 3000);
    assert.match(sensor.health().detail ?? '', /refused checksum: checksum [0-9A-F]{2} does not match/);
    const resumed = (await next(2)).map((g) => g.sample);
    for (const s of resumed) onRoute(s);
    assert.equal(sensor.health().rejected, before + 3);
    assert.equal(sensor.health().state, 'ok');
  });

  it('garbage bytes (a device at the wrong baud rate): degraded while nothing else comes, then survived', async () => {
    const rng = new Random(99);
    // Random bytes with the odd line end and `$`, so some garbage looks like the start of a sentence.
    const garbage = () =>
      Buffer.from(Array.from({ length: 100 }, () => (rng.next() < 0.02 ? 0x0a : rng.next() < 0.02 ? 0x24 : rng.int(0, 255))));
    emulator.silence(4500);
    const until = Date.now() + 4500;
    const writing = (async () => {
      while (Date.now() < until) {
        await emulator.writeRaw(garbage());
        await sleep(100);
      }
    })();
    await waitFor('degraded by garbage', () => sensor.health().state === 'degraded', 6000);
    assert.match(sensor.health().detail ?? '', /only unreadable input for .* \(wrong baud rate\?\)/);
    await writing;
    const resumed = (await next(2)).map((g) => g.sample);
    for (const s of resumed) {
      assert.equal(s.quality, 'good');
      onRoute(s);
    }
    assert.equal(sensor.health().state, 'ok');
  });

  it('a sentence split across two reads still parses', async () => {
    const before = sensor.health().rejected;
    const line = await emulator.splitNext(200);
    const r = parseNmea(line);
    assert.ok(r.ok && r.sentence.type === 'GGA' && r.sentence.timeMs !== undefined, line);
    const tod = r.sentence.timeMs;
    await waitFor('the sample of the split cycle', () => got.some((g) => g.sample.ts % DAY_MS === tod), 3000);
    assert.equal(sensor.health().rejected, before, 'neither half was refused');
  });

  it('5 s of silence: degraded, then ok again when data resumes', async () => {
    emulator.silence(5000);
    const t0 = Date.now();
    await waitFor('degraded', () => sensor.health().state === 'degraded', 6000);
    assert.match(sensor.health().detail ?? '', /no data from .* for \d/);
    const count = good().length;
    await waitFor('ok again', () => sensor.health().state === 'ok', 6000);
    assert.ok(Date.now() - t0 >= 4000, 'ok only once the receiver talks again');
    await waitFor('good samples again', () => good().length > count, 3000);
  });

  it('unplugged: down; plugged back in: it reopens by itself and samples resume', async () => {
    await pty.stop();
    await waitFor('down', () => sensor.health().state === 'down', 3000);
    assert.match(sensor.health().detail ?? '', /disconnected/);
    // It keeps trying while the device is gone.
    await waitFor('a failed reopen', () => /cannot open/.test(sensor.health().detail ?? ''), 3000);
    assert.equal(sensor.health().state, 'down');
    await emulator.stop();

    await pty.restart();
    // A replugged receiver boots again: banner, a short search, then a fix.
    emulator = new NmeaGpsEmulator({ path: pty.b, model, noFixMs: 1000 });
    await emulator.start();
    await waitFor('reopened', () => sensor.health().state === 'ok', 4000);
    const from = got.length;
    await waitFor('a good sample after the replug', () => got.slice(from).some((g) => g.sample.quality === 'good'), 6000);
    for (const { sample } of got.slice(from)) {
      assert.equal(sample.clock, 'synced');
      onRoute(sample);
    }
  });
});
