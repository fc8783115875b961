import type { Quality, Reading, SensorId } from '../../../shared/contract/reading.js';
import type { AlertEvent, RuleEngine, WindowResult } from '../../../shared/rules/engine.js';
import { ruleSetSchema, type RuleSet } from '../../../shared/rules/rule-set.js';

/** Window-aligned, so second s of the test data falls in window floor(s / 10). */
export const B = Date.UTC(2024, 0, 1, 8);
export const SEC = 1000;
export const MIN = 60 * SEC;
export const V = 'truck-1';
/** Arrival lags event time a little, so closedAt is distinguishable from the window end. */
export const LAG = 7;

export function ruleSet(rules: unknown[], over: Record<string, unknown> = {}): RuleSet {
  return ruleSetSchema.parse({ windowMs: 10_000, freshnessMs: 60_000, rules, ...over });
}

export interface PushOptions {
  quality?: Quality;
  headTs?: number;
  /** When the reading reached the gateway: by default a little after it was taken; a backlog arrives when its agent is at headTs. */
  arrivedAt?: number;
}

/** Feeds an engine with per-vehicle seqs and records every event and closed window. */
export class Feed {
  readonly events: AlertEvent[] = [];
  readonly windows: WindowResult[] = [];
  private readonly seqs = new Map<string, number>();

  constructor(readonly engine: RuleEngine) {
    engine.onWindow = (w) => this.windows.push(w);
  }

  push(vehicle: string, sensor: SensorId, ts: number, value: number, opts: PushOptions = {}): AlertEvent[] {
    const seq = (this.seqs.get(vehicle) ?? 0) + 1;
    this.seqs.set(vehicle, seq);
    const r: Reading = { vehicle, seq, ts, clock: 'synced', sensor, value, quality: opts.quality ?? 'good' };
    const out = this.engine.process(r, opts.arrivedAt ?? ts + LAG, opts.headTs);
    this.events.push(...out);
    return out;
  }

  /** One reading every `stepS` seconds over seconds [fromS, toS) after B. */
  series(
    vehicle: string,
    sensor: SensorId,
    fromS: number,
    toS: number,
    value: (s: number) => number,
    opts: PushOptions = {},
    stepS = 1,
  ): AlertEvent[] {
    const out: AlertEvent[] = [];
    for (let s = fromS; s < toS; s += stepS) out.push(...this.push(vehicle, sensor, B + s * SEC, value(s), opts));
    return out;
  }

  windowsOf(vehicle: string, sensor: SensorId): WindowResult[] {
    return this.windows.filter((w) => w.vehicle === vehicle && w.sensor === sensor);
  }
}

export const kinds = (events: AlertEvent[]) =>
  events.map((e) => (e.kind === 'cleared' ? `cleared ${e.alertId}` : `${e.kind} ${e.alert.id}`));
export const raised = (events: AlertEvent[]) => events.flatMap((e) => (e.kind === 'raised' ? [e.alert] : []));
export const cleared = (events: AlertEvent[]) => events.flatMap((e) => (e.kind === 'cleared' ? [e] : []));

/** raisedAt is wall-clock time; everything else must be reproducible. */
export function normalize(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x), (k, v: unknown) => (k === 'raisedAt' ? 0 : v));
}
