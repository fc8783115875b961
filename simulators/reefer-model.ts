import type { Random } from './random.js';

/** Set points a reefer is commonly run at: deep frozen, frozen, chilled, bananas. */
export const SET_POINTS = [-20, -18, 2, 4, 5, 13] as const;

// Two heat stores: the air the probe measures (small, quick) and the load with the box
// (large, slow). Rates per second: the walls leak into the air, an open door swaps it
// with the outside in minutes, the air and the load exchange heat, the unit cools (or
// heats) the air.
const WALL = 1 / 1800;
const DOOR = 1 / 180;
const AIR_TO_LOAD = 1 / 300;
const LOAD_TO_AIR = 1 / 86_400;
const COOLING_PER_S = 0.03;
const HEATING_PER_S = 0.015;
/** Proportional band of the unit's controller, °C: full output this far off the set point. */
const BAND = 1;
// Defrost: the evaporator heater runs and the return air the probe sees warms a few degrees.
const DEFROST_HEAT_PER_S = 0.002;
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
 * The cargo box. A reefer holds the air at its set point with a proportional controller
 * and stops to defrost every few hours; an open door lets the outside in, and the cold
 * load pulls the air back once it shuts; a failed unit lets the box warm toward the
 * weather, quickly in the air and slowly in the load. A dry box (no reefer) simply
 * follows the weather a few hours behind.
 */
export class ReeferModel {
  /** The air temperature, what the probe reads. */
  temp: number;
  setPoint: number | undefined;
  private load: number;
  private readonly defrostEveryS: number;
  private readonly defrostForS: number;
  private sinceDefrostS: number;

  constructor(
    private readonly rng: Random,
    ambient: number,
  ) {
    this.setPoint = rng.next() < 0.75 ? SET_POINTS[rng.int(0, SET_POINTS.length - 1)] : undefined;
    this.defrostEveryS = rng.uniform(4, 8) * 3600;
    this.defrostForS = rng.uniform(15, 30) * 60;
    this.sinceDefrostS = rng.uniform(0, this.defrostEveryS);
    this.temp = this.load = (this.setPoint ?? ambient) + rng.uniform(-0.5, 0.5);
  }

  /** A new load, brought at its own temperature: pre-cooled to the new set point, or the weather's for a dry one. */
  reload(setPoint: number | undefined, ambient: number): void {
    this.setPoint = setPoint;
    this.load = setPoint ?? ambient;
  }

  get defrosting(): boolean {
    return this.setPoint !== undefined && this.sinceDefrostS >= this.defrostEveryS;
  }

  step(dtS: number, x: ReeferInputs): void {
    const outside = x.ambient + SOLAR_GAIN * x.sun;
    let air = WALL * (outside - this.temp) + AIR_TO_LOAD * (this.load - this.temp);
    if (x.doorOpen) air += DOOR * (x.ambient - this.temp);
    if (this.setPoint !== undefined) {
      this.sinceDefrostS += dtS;
      if (this.sinceDefrostS >= this.defrostEveryS + this.defrostForS) this.sinceDefrostS = 0;
      if (this.defrosting) {
        air += DEFROST_HEAT_PER_S;
      } else if (!x.failed && !x.doorOpen) {
        const error = this.temp - this.setPoint;
        // Proportional control, with the leak it balances at the set point fed forward.
        const demand = WALL * (outside - this.setPoint) + AIR_TO_LOAD * (this.load - this.setPoint);
        air -= clamp(demand + (COOLING_PER_S * error) / BAND, -HEATING_PER_S, COOLING_PER_S);
      }
    }
    this.load += LOAD_TO_AIR * (this.temp - this.load) * dtS;
    this.temp += air * dtS + this.rng.normal() * AIR_WANDER * Math.sqrt(dtS);
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
