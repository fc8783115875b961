import { alertId, type Alert } from '../contract/alert.js';
import type { Reading, SensorId } from '../contract/reading.js';
import { evaluate } from './evaluate.js';
import type { Rule, RuleSet } from './rule-set.js';
import { Baseline, WindowStats } from './window.js';

export type AlertEvent =
  | { kind: 'raised'; alert: Alert }
  /** A historical episode that continues into live windows: now the driver must hear of it. */
  | { kind: 'promoted'; alert: Alert }
  | { kind: 'cleared'; alertId: string; vehicle: string; rule: string; at: number };

/** Every closed window with each rule's score: what `fleet replay --scores` prints. */
export interface WindowResult {
  vehicle: string;
  sensor: SensorId;
  start: number;
  end: number;
  count: number;
  mean: number;
  scores: Record<string, number>;
}

interface Episode {
  alert: Alert;
  cleanWindows: number;
}

interface VehicleState {
  /** Highest event time seen: windows ending at or before it are complete. */
  watermark: number;
  /** Newest event time the vehicle is known to have (its own headTs included). */
  newest: number;
  /** Last seq fed in, used to drop repeats while rebuilding after a restart. */
  lastSeq: number;
  windows: Partial<Record<SensorId, WindowStats>>;
  baselines: Record<string, Baseline>;
  episodes: Record<string, Episode>;
}

export interface EngineCounters {
  readings: number;
  late: number;
  windows: number;
}

/**
 * Event-time tumbling windows per (vehicle, sensor), closed by the vehicle's own
 * watermark: order per vehicle is guaranteed upstream, so no global watermark (and no
 * waiting on the slowest truck) is needed.
 */
export class RuleEngine {
  private readonly vehicles = new Map<string, VehicleState>();
  private readonly rulesBySensor = new Map<SensorId, Rule[]>();
  readonly counters: EngineCounters = { readings: 0, late: 0, windows: 0 };
  onWindow?: (w: WindowResult) => void;

  constructor(readonly ruleSet: RuleSet) {
    for (const rule of ruleSet.rules) {
      const list = this.rulesBySensor.get(rule.sensor) ?? [];
      list.push(rule);
      this.rulesBySensor.set(rule.sensor, list);
    }
  }

  /**
   * Feeds one reading. `arrivedAt` is when it reached the gateway (the start of alert
   * latency); `headTs` the sending agent's newest event time, if known.
   */
  process(r: Reading, arrivedAt: number, headTs = r.ts): AlertEvent[] {
    const v = this.vehicle(r.vehicle);
    if (r.seq > v.lastSeq) v.lastSeq = r.seq;
    v.newest = Math.max(v.newest, headTs, r.ts);
    const events: AlertEvent[] = [];
    if (r.ts > v.watermark) {
      v.watermark = r.ts;
      this.closeWindows(r.vehicle, v, r.ts, arrivedAt, events);
    }
    this.counters.readings++;
    if (r.quality === 'bad' || !this.rulesBySensor.has(r.sensor)) return events;
    const start = r.ts - (r.ts % this.ruleSet.windowMs);
    const end = start + this.ruleSet.windowMs;
    if (end <= v.watermark) {
      this.counters.late++; // its window closed already: evaluating it again could raise twice
      return events;
    }
    let w = v.windows[r.sensor];
    if (w === undefined || w.start !== start) {
      w = new WindowStats(start, end);
      v.windows[r.sensor] = w;
    }
    w.add(r.ts, r.value);
    return events;
  }

  /** True when this (vehicle, seq) was already fed: used to replay a stream after a restart. */
  seen(vehicle: string, seq: number): boolean {
    return seq <= (this.vehicles.get(vehicle)?.lastSeq ?? 0);
  }

  /** Whether this vehicle has state here (a detector that just took it over has none). */
  knows(vehicle: string): boolean {
    return this.vehicles.has(vehicle);
  }

  /**
   * Continues an episode raised elsewhere (before a restart, or by the detector that held
   * this vehicle's partition), so it is not raised a second time under a new episode start.
   */
  adopt(alert: Alert): void {
    const v = this.vehicle(alert.vehicle);
    if (this.ruleSet.rules.some((r) => r.name === alert.rule)) v.episodes[alert.rule] ??= { alert, cleanWindows: 0 };
  }

  /** Closes every open window (end of a replay). */
  flush(arrivedAt: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    for (const [id, v] of this.vehicles) this.closeWindows(id, v, Number.MAX_SAFE_INTEGER, arrivedAt, events);
    return events;
  }

  activeAlerts(): Alert[] {
    return [...this.vehicles.values()].flatMap((v) => Object.values(v.episodes).map((e) => e.alert));
  }

  get vehicleCount(): number {
    return this.vehicles.size;
  }

  snapshot(): string {
    return JSON.stringify([...this.vehicles]);
  }

  restore(json: string): void {
    this.vehicles.clear();
    for (const [id, v] of JSON.parse(json) as [string, VehicleState][]) {
      for (const [sensor, w] of Object.entries(v.windows)) {
        v.windows[sensor as SensorId] = Object.assign(new WindowStats(w.start, w.end), w);
      }
      for (const [rule, b] of Object.entries(v.baselines)) v.baselines[rule] = Object.assign(new Baseline(), b);
      this.vehicles.set(id, v);
    }
  }

  private vehicle(id: string): VehicleState {
    let v = this.vehicles.get(id);
    if (v === undefined) {
      v = { watermark: 0, newest: 0, lastSeq: 0, windows: {}, baselines: {}, episodes: {} };
      this.vehicles.set(id, v);
    }
    return v;
  }

  private closeWindows(vehicle: string, v: VehicleState, upTo: number, arrivedAt: number, events: AlertEvent[]): void {
    for (const sensor in v.windows) {
      const w = v.windows[sensor as SensorId]!;
      if (w.end > upTo) continue;
      delete v.windows[sensor as SensorId];
      this.counters.windows++;
      this.evaluateWindow(vehicle, v, sensor as SensorId, w, arrivedAt, events);
    }
  }

  private evaluateWindow(
    vehicle: string,
    v: VehicleState,
    sensor: SensorId,
    w: WindowStats,
    arrivedAt: number,
    events: AlertEvent[],
  ): void {
    const scores: Record<string, number> = {};
    const live = w.end >= v.newest - this.ruleSet.freshnessMs;
    for (const rule of this.rulesBySensor.get(sensor)!) {
      const baseline = rule.type === 'deviation' ? (v.baselines[rule.name] ??= new Baseline()) : undefined;
      const verdict = evaluate(rule, w, baseline);
      if (verdict === undefined) continue;
      scores[rule.name] = verdict.score;
      const episode = v.episodes[rule.name];
      if (verdict.breach) {
        if (episode === undefined) {
          const alert: Alert = {
            id: alertId(vehicle, rule.name, w.start),
            vehicle,
            rule: rule.name,
            severity: rule.severity,
            sensor,
            episodeStart: w.start,
            windowStart: w.start,
            windowEnd: w.end,
            observed: verdict.observed,
            expected: verdict.expected,
            message: verdict.message,
            live,
            raisedAt: Date.now(),
            closedAt: arrivedAt,
          };
          v.episodes[rule.name] = { alert, cleanWindows: 0 };
          events.push({ kind: 'raised', alert });
        } else {
          episode.cleanWindows = 0;
          if (live && !episode.alert.live) {
            episode.alert = { ...episode.alert, live, windowStart: w.start, windowEnd: w.end, observed: verdict.observed, closedAt: arrivedAt };
            events.push({ kind: 'promoted', alert: episode.alert });
          }
        }
      } else if (episode !== undefined && ++episode.cleanWindows >= rule.clearAfterWindows) {
        delete v.episodes[rule.name];
        events.push({ kind: 'cleared', alertId: episode.alert.id, vehicle, rule: rule.name, at: w.end });
      }
    }
    this.onWindow?.({ vehicle, sensor, start: w.start, end: w.end, count: w.count, mean: w.mean, scores });
  }
}
