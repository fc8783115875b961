import type { Random } from './random.js';

/**
 * The road's grade along a route: a few overlapping hills of 1 to 8 km, as steep as the
 * region is hilly. Grade is what makes a loaded truck's engine work and warm, so the
 * detector meets climbs that are normal and must not call them faults.
 */
export class Terrain {
  private readonly hills: { amplitude: number; wavelengthM: number; phase: number }[];

  constructor(rng: Random) {
    // Flat plains to rolling hills: the steepest stretches reach 1.5 % to 7 %.
    const hilliness = rng.uniform(0.005, 0.025);
    this.hills = [1000, 2500, 7000].map((base) => ({
      amplitude: hilliness * rng.uniform(0.5, 1.2),
      wavelengthM: base * rng.uniform(0.7, 1.3),
      phase: rng.uniform(0, 2 * Math.PI),
    }));
  }

  /** Rise over run at `distanceM` along the route (0.05 is 5 %). */
  gradeAt(distanceM: number): number {
    let g = 0;
    for (const h of this.hills) g += h.amplitude * Math.sin((2 * Math.PI * distanceM) / h.wavelengthM + h.phase);
    return g;
  }
}
