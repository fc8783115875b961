import type { Sample, SensorId } from '../shared/contract/reading.js';
import { sampleRates, takeSample } from './simulated-sensors.js';
import type { TruckModel } from './truck-model.js';

/**
 * The samples the truck's sensors would give over [fromTs, toTs), in ts order, computed in
 * simulated time: minutes of telemetry in milliseconds, for tests and replays. Each sensor
 * samples at fromTs + k / rate; same-instant samples come in SENSORS order. Rates default
 * to DEFAULT_SAMPLE_HZ; a rate of 0 leaves that sensor out.
 */
export function* simulateSamples(
  model: TruckModel,
  fromTs: number,
  toTs: number,
  rates: Partial<Record<SensorId, number>> = {},
): Generator<Sample, void, undefined> {
  // The model cannot go back, and samples from its future would carry the wrong values.
  if (model.ts > fromTs) throw new RangeError(`the model is already at ${model.ts}, after fromTs ${fromTs}`);
  const clocks = sampleRates(rates).map(([sensor, hz]) => ({ sensor, periodMs: 1000 / hz, k: 0 }));
  const tsOf = (c: (typeof clocks)[number]) => Math.round(fromTs + c.k * c.periodMs);
  for (;;) {
    let next = clocks[0];
    for (const c of clocks) if (tsOf(c) < tsOf(next!)) next = c;
    if (next === undefined || tsOf(next) >= toTs) return;
    const sample = takeSample(model, next.sensor, tsOf(next));
    next.k++;
    if (sample) yield sample;
  }
}
