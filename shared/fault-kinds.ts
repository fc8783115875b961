/**
 * What can go wrong on a simulated truck, by name: the simulators model each kind
 * (simulators/faults.ts), and an agent's config may ask for them (its `faults` setting).
 * Physical faults change the truck itself (the sensors read it faithfully); sensor faults
 * change only what one sensor reports.
 */
export const PHYSICAL_FAULTS = [
  /** Coolant loss or a failed pump: the engine runs to ~125 °C within minutes. */
  'engine_overheat',
  /** A clogged radiator or a thermostat stuck nearly shut: the engine creeps past 105 °C over ten minutes or more. */
  'engine_overheat_slow',
  /** The radiator fan no longer turns: fine at speed, too hot when slow, climbing or idling. */
  'fan_failure',
  /** The reefer's compressor stops: the cargo warms toward ambient. */
  'cargo_heating',
  /** The GPS reports positions kilometres away (multipath, spoofing, a receiver glitch). */
  'gps_jump',
] as const;

export const SENSOR_FAULTS = [
  /** The sensor repeats the value it had when it stuck. */
  'stuck_sensor',
  /** A loose contact: large noise and missing readings. */
  'noisy_sensor',
  /** The sensor reports nothing. */
  'dropout',
  /** The calibration walks away: the reading gains `magnitude` units an hour. */
  'sensor_drift',
] as const;

export const FAULT_KINDS = [...PHYSICAL_FAULTS, ...SENSOR_FAULTS] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
