import type { Random } from './random.js';

const BRAKE_MS2 = 1.2;
/** Engine rpm per km/h in each gear, top gear first: 15 puts 85 km/h at ~1 275 rpm. */
const GEARS = Array.from({ length: 8 }, (_, i) => 15 * 1.35 ** i);
/** Drivers shift up later when pulling away than when cruising. */
const SHIFT_UP_RPM_ACCELERATING = 1300;
const SHIFT_UP_RPM_CRUISING = 1000;

// A 40-tonne-class tractor: rated power, rolling resistance, drag area, air density.
const ENGINE_POWER_W = 330_000;
const ROLLING = 0.006;
const DRAG_AREA_M2 = 6;
const AIR_DENSITY = 1.2;
const G = 9.81;
/** OBD-II calculated load at idle: the engine's own friction and accessories. */
const IDLE_LOAD = 0.18;

type Phase = 'stopped' | 'driving' | 'stopping';

/**
 * A truck's speed over time: idle at a stop, pull away, cruise at 60–90 km/h with small
 * wander, now and then change cruise speed or brake to another stop. Climbs slow a heavy
 * truck down to what its engine can pull; `held` keeps it parked (a delivery, a break).
 */
export class DriveCycle {
  speedKmh = 0;
  /** m/s², over the last step. */
  accel = 0;
  /** Share of the engine's power in use, as OBD-II PID 04 reports it: 0 on the overrun, ~0.18 at idle. */
  load = IDLE_LOAD;
  held = false;
  private phase: Phase = 'stopped';
  private phaseLeftS: number;
  private cruiseKmh = 0;
  private gust = 0;
  private wander = 0;
  private readonly accelLimit: number;

  constructor(private readonly rng: Random) {
    this.accelLimit = rng.uniform(0.4, 0.7);
    this.phaseLeftS = rng.uniform(30, 60);
  }

  step(dtS: number, grade: number, massKg: number): void {
    // Noise smoothed twice (~5 s, then 10 s) gives a speed that drifts a km/h or two
    // without step-to-step jitter a real 40-tonne truck could not have.
    const decay = Math.exp(-dtS / 5);
    this.gust = this.gust * decay + this.rng.normal() * 3 * Math.sqrt(1 - decay * decay);
    this.wander += ((this.gust - this.wander) * dtS) / 10;
    this.phaseLeftS -= dtS;
    if (this.held) {
      if (this.phase !== 'stopped') this.phase = 'stopping';
      if (this.speedKmh === 0) this.phase = 'stopped';
    } else if (this.phase === 'stopped' && this.phaseLeftS <= 0) {
      this.cruise();
    } else if (this.phase === 'driving' && this.phaseLeftS <= 0) {
      if (this.rng.next() < 0.25) this.phase = 'stopping';
      else this.cruise();
    } else if (this.phase === 'stopping' && this.speedKmh === 0) {
      this.phase = 'stopped';
      this.phaseLeftS = this.rng.uniform(20, 120);
    }
    const target = this.phase === 'driving' ? this.cruiseKmh + this.wander : 0;
    const v = this.speedKmh / 3.6;
    const resist = massKg * G * (grade + ROLLING) + 0.5 * AIR_DENSITY * DRAG_AREA_M2 * v * v;
    // Above walking pace the engine's power, not the driver, caps acceleration on a climb.
    const powerLimited = v > 1 ? ((0.95 * ENGINE_POWER_W) / v - resist) / massKg : this.accelLimit;
    const dv = Math.min(Math.min(this.accelLimit, powerLimited) * dtS, Math.max(-BRAKE_MS2 * dtS, target / 3.6 - v));
    const vNext = Math.max(0, v + dv);
    this.speedKmh = vNext * 3.6;
    this.accel = (vNext - v) / dtS;
    const powerW = Math.max(0, (massKg * this.accel + resist) * vNext);
    this.load = this.speedKmh === 0 ? IDLE_LOAD : Math.min(1, powerW === 0 ? 0 : IDLE_LOAD + ((1 - IDLE_LOAD) * powerW) / ENGINE_POWER_W);
  }

  /** Engine speed for the current road speed: the highest gear that keeps the engine above its shift point. */
  rpm(idleRpm: number): number {
    const floor = this.accel > 0.2 ? SHIFT_UP_RPM_ACCELERATING : SHIFT_UP_RPM_CRUISING;
    const ratio = GEARS.find((r) => this.speedKmh * r >= floor) ?? GEARS.at(-1)!;
    // Below the lowest gear's idle speed the clutch slips and the engine idles.
    return Math.max(idleRpm, this.speedKmh * ratio);
  }

  private cruise(): void {
    this.phase = 'driving';
    this.cruiseKmh = this.rng.uniform(62, 88);
    this.phaseLeftS = this.rng.uniform(60, 360);
  }
}
