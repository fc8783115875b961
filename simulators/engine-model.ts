import type { Random } from './random.js';

// Coolant heat balance in °C/s. Combustion heat grows with load; the block loses heat to
// the air; the radiator sheds it as the thermostat opens, as much as the air through it
// allows: ram air at speed, the fan when slow. Together they hold 86–92 °C cruising,
// up to ~96 °C on a long climb, and warm a cold engine 4 (idling) to 20 (pulling hard) °C/min.
const HEAT_IDLE = 0.072;
const HEAT_LOAD = 0.3;
const BLOCK_LOSS = 0.0006; // per °C above ambient, running
const BLOCK_LOSS_OFF = 0.0003; // per °C above ambient, parked: about an hour to cool down
const RADIATOR = 0.0048; // per °C above ambient, thermostat open and full air flow
const THERMOSTAT_OPENS = 85;
const THERMOSTAT_FULL = 97;
const FAN_FROM = 92;
const FAN_FULL = 97;
/** Ram air through the radiator is full from this road speed on. */
const RAM_AIR_KMH = 90;
const ENGINE_WANDER = 0.05; // °C per √s of process noise
// A failed cooling circuit: a lag toward 125 °C that passes 105 °C about 35 s after onset.
const OVERHEAT_TEMP = 125;
const OVERHEAT_TAU_S = 55;
/** What is left of the radiator's capacity when it is clogged or the thermostat sticks. */
const CLOGGED_RADIATOR = 0.25;

export interface EngineInputs {
  running: boolean;
  load: number;
  speedKmh: number;
  ambient: number;
  overheat: boolean;
  clogged: boolean;
  fanFailed: boolean;
}

/** The coolant temperature of one engine. */
export class EngineModel {
  temp: number;

  constructor(
    private readonly noise: Random,
    startTemp: number,
  ) {
    this.temp = startTemp;
  }

  step(dtS: number, x: EngineInputs): void {
    const t = this.temp;
    const aboveAir = t - x.ambient;
    let rate: number;
    if (!x.running) {
      rate = -BLOCK_LOSS_OFF * aboveAir;
    } else if (x.overheat) {
      rate = (OVERHEAT_TEMP - t) / OVERHEAT_TAU_S;
    } else {
      const open = clamp01((t - THERMOSTAT_OPENS) / (THERMOSTAT_FULL - THERMOSTAT_OPENS));
      const ram = Math.min(1, Math.max(0.03, x.speedKmh / RAM_AIR_KMH));
      const fan = x.fanFailed ? 0 : clamp01((t - FAN_FROM) / (FAN_FULL - FAN_FROM));
      const radiator = RADIATOR * (x.clogged ? CLOGGED_RADIATOR : 1) * open * Math.max(ram, fan);
      rate = HEAT_IDLE + HEAT_LOAD * x.load - (BLOCK_LOSS + radiator) * aboveAir;
    }
    const wander = x.running ? this.noise.normal() * ENGINE_WANDER * Math.sqrt(dtS) : 0;
    this.temp += rate * dtS + wander;
  }
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
