import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What a chaos or fuzz scenario measured, for docs/RELIABILITY.md. Each scenario prints one
 * `# reliability {...}` line (visible in any test run) and, when RELIABILITY_OUT names a
 * directory (`npm run reliability` sets it), writes the same figures there as JSON, from
 * which the document is regenerated.
 */
export interface ChaosFigures {
  kind: 'chaos';
  scenario: string;
  /** SIGKILLs (or other deaths) per part: agent, gateway, detector, dispatcher, kafka ... */
  kills: Record<string, number>;
  produced: number;
  stored: number;
  lost: number;
  duplicates: number;
  alertsExpected: number;
  alertsRaised: number;
  /** Notifications sent per raised alert on each channel; null when the scenario has no dispatcher. */
  notificationsPerAlert: number | null;
  durationS: number;
}

export interface FuzzFigures {
  kind: 'fuzz';
  /** The entry point under fuzz, e.g. `gateway MQTT payload`, `NMEA driver`. */
  entryPoint: string;
  cases: number;
  crashes: number;
  /** Cases refused with a reason (the rest were accepted as valid input). */
  rejected: number;
  /** Refusals counted by reason, so a new reason or a reason-less refusal shows up. */
  reasons: Record<string, number>;
  durationS: number;
}

/** A device whose power is cut (test/chaos/power-cuts.test.ts): what the buffer kept. */
export interface PowerCutFigures {
  kind: 'power';
  scenario: string;
  cuts: number;
  /** Readings the agent committed to its buffer (its last seq). */
  committed: number;
  /** Distinct readings the gateway acknowledged, as the store holds them. */
  acknowledged: number;
  stored: number;
  /** Committed readings that never reached the store. */
  lost: number;
  duplicates: number;
  /** Readings taken but not yet committed when the power went, estimated from each cut's window. */
  uncommittedAtCuts: number;
  /** The longest time between the last stored reading of a boot and its cut. */
  maxWindowMs: number;
  commitIntervalMs: number;
  durationS: number;
}

export type ReliabilityFigures = ChaosFigures | FuzzFigures | PowerCutFigures;

/** Soak runs (`npm run reliability -- --soak`) scale the scenarios up by this factor. */
export const SOAK = Number(process.env.RELIABILITY_SOAK ?? '1') || 1;

export function reportReliability(figures: ReliabilityFigures): void {
  process.stdout.write(`# reliability ${JSON.stringify(figures)}\n`);
  const out = process.env.RELIABILITY_OUT;
  if (!out) return;
  mkdirSync(out, { recursive: true });
  const name = figures.kind === 'fuzz' ? figures.entryPoint : figures.scenario;
  writeFileSync(join(out, `${figures.kind}-${name.replace(/[^A-Za-z0-9]+/g, '-')}.json`), JSON.stringify(figures, null, 2));
}
