import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { motionBetween } from '../../../hardware/gps/derived-motion.js';

describe('motionBetween', () => {
  // One minute of latitude is one nautical mile, 1852 m, on the sphere of the mean Earth radius near enough.
  const NM_PER_DEG = 60;

  it('gives the ground speed over the interval', () => {
    // A tenth of a nautical mile north in 10 s: 66.7 km/h.
    const m = motionBetween({ lat: 50, lon: 8 }, { lat: 50 + 0.1 / NM_PER_DEG, lon: 8 }, 10_000);
    assert.ok(Math.abs(m.speedKmh - 66.7) < 0.2, `${m.speedKmh}`);
    assert.ok(Math.abs(m.courseDeg! - 0) < 1e-6, `north: ${m.courseDeg}`);
  });

  it('gives the course in degrees true, in [0, 360)', () => {
    const at = { lat: -37.78, lon: 175.31 };
    const step = 0.0003;
    const cases: [number, number, number][] = [
      [step, 0, 0],
      [0, step, 90],
      [-step, 0, 180],
      [0, -step, 270],
      [step, step, 45],
    ];
    for (const [dLat, dLon, course] of cases) {
      const m = motionBetween(at, { lat: at.lat + dLat, lon: at.lon + dLon / Math.cos((at.lat * Math.PI) / 180) }, 1000);
      assert.ok(Math.abs(m.courseDeg! - course) < 0.05, `${dLat},${dLon}: ${m.courseDeg} vs ${course}`);
      assert.ok(m.courseDeg! >= 0 && m.courseDeg! < 360);
    }
  });

  it('across the antimeridian the short way', () => {
    const m = motionBetween({ lat: 0, lon: 179.9999 }, { lat: 0, lon: -179.9999 }, 1000);
    assert.ok(Math.abs(m.speedKmh - 80.06) < 0.1, `${m.speedKmh}`);
    assert.ok(Math.abs(m.courseDeg! - 90) < 1e-6);
  });

  it('leaves the course out at walking pace and below, where position jitter decides it', () => {
    const still = motionBetween({ lat: 50, lon: 8 }, { lat: 50.00001, lon: 8 }, 1000);
    assert.ok(still.speedKmh > 3 && still.speedKmh < 5, `${still.speedKmh}`);
    assert.equal(still.courseDeg, undefined);
    assert.deepEqual(motionBetween({ lat: 50, lon: 8 }, { lat: 50, lon: 8 }, 1000), { speedKmh: 0 });
  });
});
