import type { SetFigures } from './eval.js';

/**
 * The floors the default rules are held to, on the held-out set: what docs/DETECTION.md
 * promises a fleet and what the quality test checks.
 */
export const FLOORS = {
  falseAlertsPerDay: 0.05,
  recall: { engine_overheat: 0.95, engine_overheat_slow: 0.95, fan_failure: 0.95, cargo_heating: 0.95, stuck_sensor: 0.95 } as Record<
    string,
    number
  >,
  overheatWindowsAfterCrossing: 2,
  normalRowsAbove09: 0.001,
};

const FAULT_NAMES: Record<string, string> = {
  engine_overheat: 'overheat (fast)',
  engine_overheat_slow: 'overheat (slow)',
  fan_failure: 'cooling-fan failure',
  cargo_heating: 'cargo warming (reefer failure)',
  stuck_sensor: 'stuck sensor',
  noisy_sensor: 'noisy / intermittent sensor',
  dropout: 'sensor dropout',
  sensor_drift: 'sensor drift',
  gps_jump: 'GPS jump',
};

/** Markdown tables of both seed sets side by side (what `fleet eval` prints and docs/DETECTION.md holds). */
export function* reportLines(sets: SetFigures[]): Generator<string> {
  const cols = sets.map((s) => s.set);
  yield `| fault | ${cols.map((c) => `${c}: detected`).join(' | ')} | ${cols.map((c) => `${c}: time to detect, median / p95`).join(' | ')} | floor |`;
  yield `| --- | ${cols.map(() => '---').join(' | ')} | ${cols.map(() => '---').join(' | ')} | --- |`;
  for (const f of sets[0]?.faults ?? []) {
    const per = sets.map((s) => s.faults.find((x) => x.fault === f.fault)!);
    const floor = FLOORS.recall[f.fault];
    yield `| ${FAULT_NAMES[f.fault] ?? f.fault} | ${per.map((x) => `${x.detected}/${x.instances} (${pct(x.recall)})`).join(' | ')} | ${per
      .map(
        (x) =>
          `${minutes(x.medianDetectMin)} / ${minutes(x.p95DetectMin)}${x.medianWindowsAfterCrossing === undefined ? '' : `; ${x.medianWindowsAfterCrossing} window(s) after the mean crossed 105 °C`}`,
      )
      .join(
        ' | ',
      )} | ${floor === undefined ? '' : `recall ≥ ${floor}`}${f.fault === 'engine_overheat' ? `, ≤ ${FLOORS.overheatWindowsAfterCrossing} windows after crossing` : ''} |`;
  }
  yield '';
  yield `| figure | ${cols.join(' | ')} | floor |`;
  yield `| --- | ${cols.map(() => '---').join(' | ')} | --- |`;
  const row = (name: string, f: (s: SetFigures) => string, floor = '') => `| ${name} | ${sets.map(f).join(' | ')} | ${floor} |`;
  yield row('truck-days (fault-free)', (s) => `${s.days} (${s.faultFreeDays})`);
  yield row('readings scored', (s) => s.readings.toLocaleString('en-US'));
  yield row(
    'false alerts per fault-free truck-day',
    (s) => `${s.falseAlertsPerDay.toFixed(3)}${byRule(s)}`,
    `≤ ${FLOORS.falseAlertsPerDay}`,
  );
  yield row('alerts raised', (s) => String(s.alerts));
  yield row('precision / recall / F1', (s) => `${s.precision.toFixed(3)} / ${s.recall.toFixed(3)} / ${s.f1.toFixed(3)}`);
  yield row('readings of fault-free days scoring above 0.9', (s) => pct(s.normalRowsAbove09, 3), `< ${pct(FLOORS.normalRowsAbove09, 1)}`);
  yield row('area under the precision-recall curve of row scores', (s) => s.aucPr.toFixed(3));
}

/** Floors the held-out set misses, in words; empty when all are met. */
export function missedFloors(heldOut: SetFigures): string[] {
  const missed: string[] = [];
  if (heldOut.falseAlertsPerDay > FLOORS.falseAlertsPerDay)
    missed.push(`false alerts ${heldOut.falseAlertsPerDay.toFixed(3)} per truck-day > ${FLOORS.falseAlertsPerDay}`);
  for (const f of heldOut.faults) {
    const floor = FLOORS.recall[f.fault];
    if (floor !== undefined && f.recall < floor) missed.push(`${FAULT_NAMES[f.fault]} recall ${f.recall.toFixed(3)} < ${floor}`);
    if (f.fault === 'engine_overheat' && (f.medianWindowsAfterCrossing ?? Infinity) > FLOORS.overheatWindowsAfterCrossing) {
      missed.push(`overheat detected ${f.medianWindowsAfterCrossing} windows after crossing > ${FLOORS.overheatWindowsAfterCrossing}`);
    }
  }
  if (heldOut.normalRowsAbove09 >= FLOORS.normalRowsAbove09)
    missed.push(`${pct(heldOut.normalRowsAbove09, 3)} of fault-free readings score above 0.9`);
  return missed;
}

function byRule(s: SetFigures): string {
  const entries = Object.entries(s.falseAlertsByRule).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? '' : ` (${entries.map(([rule, n]) => `${rule} ${n}`).join(', ')})`;
}

function pct(x: number, digits = 1): string {
  return `${(100 * x).toFixed(digits)} %`;
}

function minutes(m: number | undefined): string {
  return m === undefined ? '–' : m < 10 ? `${m.toFixed(1)} min` : `${Math.round(m)} min`;
}
