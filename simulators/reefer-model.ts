import type { Random } from './random.js';

/** Set points a reefer is commonly run at: deep frozen, frozen, chilled, bananas. */
export const SET_POINTS = [-20, -18, 2, 4, 5, 13] as const;

// The box leaks heat toward ambient over a few hours; the unit pulls down at up to
// ~0.6 °C/min and heats at half that; an open door swaps the air in minutes.
const PULL_DOWN_PER_S = 0.01;
const HEAT_UP_PER_S = 0.005;
const DOOR_TAU_S = 300;
/** Proportional band of the unit's controller, °C: full output this far off the set point. */
const BAND = 1.5;
// Defrost: the evaporator heater runs and the return air the probe sees warms a few degrees.
const DEFROST_HEAT_PER_S = 0.004;
const SOLAR_GAIN = 2.5; // °C a dry box in full sun runs above the air
const AIR_WANDER = 0.004; // °C per √s: the air in the box is never perfectly still

export interface ReeferInputs {
  ambient: number;
  /** 0 at night, 1 at midday sun. */
  sun: number;
  doorOpen: boolean;
  /** The compressor has failed: no cooling at all. */
  failed: boolean;
}

/**
 * The air in the cargo box. A reefer holds its set point with a proportional controller,
 * stops to defrost every few hours, and loses its cold through an open door; a dry box
 * (no reefer) simply follows the weather a few hours behind.
 */
export class ReeferModel {
  temp: number;
  setPoint: number | undefined;
  private readonly tauS: number;
  private readonly defrostEveryS: number;
  private readonly defrostForS: number;
  private sinceDefrostS: number;

  constructor(
    private readonly rng: Random,
    ambient: number,
  ) {
    this.setPoint = rng.next() < 0.75 ? SET_POINTS[rng.int(0, SET_POINTS.length - 1)] : undefined;
    this.tauS = rng.uniform(2, 4) * 3600;
    this.defrostEveryS = rng.uniform(4, 8) * 3600;
    this.defrostForS = rng.uniform(15, 30) * 60;
    this.sinceDefrostS = rng.uniform(0, this.defrostEveryS);
    this.temp = (this.setPoint ?? ambient) + rng.uniform(-0.5, 0.5);
  }

  get defrosting(): boolean {
    return this.setPoint !== undefined && this.sinceDefrostS >= this.defrostEveryS;
  }

  step(dtS: number, x: ReeferInputs): void {
    const outside = x.ambient + SOLAR_GAIN * x.sun;
    let rate = (outside - this.temp) / this.tauS;
    if (x.doorOpen) rate += (x.ambient - this.temp) / DOOR_TAU_S;
    if (this.setPoint !== undefined) {
      this.sinceDefrostS += dtS;
      if (this.sinceDefrostS >= this.defrostEveryS + this.defrostForS) this.sinceDefrostS = 0;
      if (this.defrosting) {
        rate += DEFROST_HEAT_PER_S;
      } else if (!x.failed && !x.doorOpen) {
        const error = this.temp - this.setPoint;
        rate -= PULL_DOWN_PER_S * clamp01(error / BAND);
        rate += HEAT_UP_PER_S * clamp01(-error / BAND - 1);
        // The controller's integral action: the leak is offset exactly at the set point.
        rate -= ((outside - this.setPoint) / this.tauS) * clamp01(1 - Math.abs(error) / BAND);
      }
    }
    this.temp += rate * dtS + this.rng.normal() * AIR_WANDER * Math.sqrt(dtS);
  }
}

function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
