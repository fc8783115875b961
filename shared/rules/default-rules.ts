import { ruleSetSchema, type RuleSet } from './rule-set.js';

/**
 * The rules `fleet` uses when none are configured, measured on labelled truck-days by
 * `fleet eval` (docs/DETECTION.md gives each one's purpose and its figures).
 */
export const DEFAULT_RULES: RuleSet = ruleSetSchema.parse({
  rules: [
    // The engine: an absolute limit, a rise no warm-up makes, and hot for the work it is doing.
    {
      name: 'engine-overheat',
      type: 'threshold',
      sensor: 'engine_temp',
      above: 105,
      hysteresis: 3,
      clearAfterWindows: 30,
      severity: 'critical',
    },
    {
      name: 'engine-temp-rise',
      type: 'rate',
      sensor: 'engine_temp',
      maxPerMinute: 30,
      minFit: 0.7,
      clearAfterWindows: 6,
      severity: 'warning',
    },
    {
      name: 'engine-hot-for-load',
      type: 'context',
      sensor: 'engine_temp',
      inputs: ['engine_load', 'speed', 'rpm', 'ambient_temp'],
      whenAbove: 80,
      // Coolant temperature comes in whole degrees over OBD-II.
      minStd: 1,
      // A failing fan shows at every slow climb and stop: one episode while the spells
      // come within half an hour of each other, not one alert per spell.
      clearAfterWindows: 180,
      // Hot for an hour on end is the engine's new normal (or the threshold's business).
      levelShiftAfterWindows: 360,
      severity: 'warning',
    },
    // The cargo: warming away from its own normal.
    {
      name: 'cargo-warming',
      type: 'deviation',
      sensor: 'container_temp',
      direction: 'above',
      minStd: 0.3,
      forWindows: 360,
      levelShiftAfterWindows: 2160,
      settleOn: 'cargo_setpoint',
      severity: 'warning',
    },
    // Sensor health, for the fleet team: frozen, silent or jumping sensors.
    // Sensor health, for the fleet team: frozen, silent or jumping sensors. An episode ends
    // after five quiet minutes, so an intermittent fault is one alert, not one per burst.
    { name: 'engine-temp-stuck', type: 'stuck', sensor: 'engine_temp', forWindows: 60, severity: 'info' },
    { name: 'cargo-temp-stuck', type: 'stuck', sensor: 'container_temp', forWindows: 30, severity: 'info' },
    { name: 'engine-temp-dropout', type: 'dropout', sensor: 'engine_temp', whileReporting: 'rpm', afterWindows: 6, severity: 'info' },
    { name: 'cargo-temp-dropout', type: 'dropout', sensor: 'container_temp', afterWindows: 12, severity: 'info' },
    {
      name: 'engine-temp-jump',
      type: 'jump',
      sensor: 'engine_temp',
      tolerance: 2,
      maxPerSecond: 1,
      clearAfterWindows: 30,
      severity: 'info',
    },
    {
      name: 'cargo-temp-jump',
      type: 'jump',
      sensor: 'container_temp',
      tolerance: 1.5,
      maxPerSecond: 0.5,
      clearAfterWindows: 30,
      severity: 'info',
    },
    { name: 'gps-jump', type: 'jump', sensor: 'gps', tolerance: 50, maxPerSecond: 70, clearAfterWindows: 30, severity: 'info' },
  ],
});
