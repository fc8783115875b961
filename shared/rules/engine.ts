import { alertId, type Alert, type ClearReason } from '../contract/alert.js';
import type { Reading, SensorId } from '../contract/reading.js';
import { detectorOf } from './detectors/index.js';
import { boundScore, boundsWorth } from './evidence.js';
import type { Verdict, WindowView } from './detectors/detector.js';
import type { Rule, RuleSet } from './rule-set.js';
import { WindowStats } from './window.js';

/** Gaps in sampling shorter than this (a reconnecting adapter, a slow GPS) are never taken for a clock fault. */
const JUMP_MIN_MS = 60_000;

/** Rules about a sensor's health rather than what it measures. */
const HEALTH_RULES: ReadonlySet<Rule['type']> = new Set(['stuck', 'dropout', 'jump']);

/** A sensor silent for this many windows no longer gives context or reference to other rules. */
const STALE_WINDOWS = 30;

export type AlertEvent =
  | { kind: 'raised'; alert: Alert }
  /** A historical episode that continues into live windows: now the driver must hear of it. */
  | { kind: 'promoted'; alert: Alert }
  | { kind: 'cleared'; alertId: string; vehicle: string; rule: string; at: number; reason: ClearReason };

/** Every closed window with each rule's score: what `fleet replay --scores` prints. */
export interface WindowResult {
  vehicle: string;
  sensor: SensorId;
  start: number;
  end: number;
  count: number;
  mean: number;
  scores: Record<string, number>;
  /** Rules whose episode began with this window (its start is the episode's start). */
  onsets: string[];
}

interface Episode {
  alert: Alert;
  cleanWindows: number;
  breachWindows: number;
}

interface VehicleState {
  id: string;
  /** Event time up to which this vehicle's windows are complete. */
  watermark: number;
  /** Newest event time the vehicle is known to have (its own headTs included). */
  newest: number;
  /** Last seq fed in, used to drop repeats while rebuilding after a restart. */
  lastSeq: number;
  /**
   * A reading far ahead of the watermark, held until another confirms the jump: one
   * reading from a runaway clock must not make the vehicle's later readings all "late".
   */
  suspect?: { r: Reading; arrivedAt: number; headTs: number };
  windows: Partial<Record<SensorId, WindowStats>>;
  /** Earliest end of an open window: nothing closes before the watermark passes it. */
  nextClose: number;
  previous: Partial<Record<SensorId, Reading>>;
  lastSeen: Partial<Record<SensorId, number>>;
  /** Mean of each sensor's newest closed window: what context rules and references read. */
  latest: Partial<Record<SensorId, number>>;
  /** Each rule's learnt state (see each detector). */
  rules: Record<string, unknown>;
  episodes: Record<string, Episode>;
  /** Consecutive breaching windows of a rule not yet raised (forWindows), from the first one's start. */
  runs: Record<string, { start: number; n: number }>;
}

export interface EngineCounters {
  readings: number;
  late: number;
  /** Readings far ahead of the vehicle's time that nothing confirmed: dropped as a clock fault. */
  outliers: number;
  windows: number;
}

/**
 * Event-time tumbling windows per (vehicle, sensor), closed by the vehicle's own
 * watermark: order per vehicle is guaranteed upstream, so no global watermark (and no
 * waiting on the slowest truck) is needed. The same engine runs in the cloud detector,
 * on the truck (edge rules), in `fleet replay` and in `fleet eval`.
 */
export class RuleEngine {
  private readonly vehicles = new Map<string, VehicleState>();
  /** Rules judged at the close of their sensor's window, and rules that see each reading. */
  private readonly windowRules = new Map<SensorId, Rule[]>();
  private readonly readingRules = new Map<SensorId, Rule[]>();
  private readonly dropoutRules: Rule[];
  private readonly healthRuleNames: Set<string>;
  /** Every sensor some rule reads: only these get windows. */
  private readonly watched: Set<SensorId>;
  readonly counters: EngineCounters = { readings: 0, late: 0, outliers: 0, windows: 0 };
  /** A reading further than this ahead of its vehicle's time waits for a second one to confirm the jump. */
  private readonly jumpMs: number;
  onWindow?: (w: WindowResult) => void;
  /** A reading that no window will judge: late (its window closed) or an outlier (far ahead, unconfirmed). */
  onDropped?: (r: Reading, why: 'late' | 'outlier') => void;

  constructor(readonly ruleSet: RuleSet) {
    this.jumpMs = Math.max(2 * ruleSet.windowMs, JUMP_MIN_MS);
    this.watched = new Set();
    for (const rule of ruleSet.rules) {
      for (const sensor of sensorsRead(rule)) this.watched.add(sensor);
      if (rule.type === 'dropout') continue;
      push(this.windowRules, rule.sensor, rule);
      if (detectorOf(rule).reading) push(this.readingRules, rule.sensor, rule);
    }
    this.dropoutRules = ruleSet.rules.filter((r) => r.type === 'dropout');
    // Health first: a window that shows a sensor broken must mute that window's value alerts too.
    for (const rules of this.windowRules.values())
      rules.sort((a, b) => Number(HEALTH_RULES.has(b.type)) - Number(HEALTH_RULES.has(a.type)));
    this.healthRuleNames = new Set(ruleSet.rules.filter((r) => HEALTH_RULES.has(r.type)).map((r) => r.name));
  }

  /**
   * Feeds one reading. `arrivedAt` is when it reached the gateway (the start of alert
   * latency); `headTs` the sending agent's newest event time, if known.
   */
  process(r: Reading, arrivedAt: number, headTs = r.ts): AlertEvent[] {
    const v = this.vehicle(r.vehicle);
    const events: AlertEvent[] = [];
    if (v.suspect !== undefined) {
      const held = v.suspect;
      v.suspect = undefined;
      if (r.ts > v.watermark + this.jumpMs) {
        this.feed(v, held.r, held.arrivedAt, held.headTs, events); // a second reading confirms the jump
      } else {
        this.counters.outliers++;
        this.onDropped?.(held.r, 'outlier');
      }
    } else if (v.watermark > 0 && r.ts > v.watermark + this.jumpMs) {
      if (r.seq > v.lastSeq) v.lastSeq = r.seq;
      v.suspect = { r, arrivedAt, headTs };
      return events;
    }
    this.feed(v, r, arrivedAt, headTs, events);
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
   * Forgets every vehicle: their windows, episodes and last seq. A detector whose share of
   * the stream changed starts again from what the store holds (open alerts, adopted) and what
   * the stream holds (the records re-read to rebuild the windows), since what it remembers of
   * a vehicle another detector had meanwhile is out of date.
   */
  forgetAll(): void {
    this.vehicles.clear();
  }

  /**
   * Continues an episode raised elsewhere (before a restart, or by the detector that held
   * this vehicle's partition), so it is not raised a second time under a new episode start.
   */
  adopt(alert: Alert): void {
    const v = this.vehicle(alert.vehicle);
    if (this.ruleSet.rules.some((r) => r.name === alert.rule)) v.episodes[alert.rule] ??= { alert, cleanWindows: 0, breachWindows: 0 };
  }

  /** Closes every open window (end of a replay). */
  flush(arrivedAt: number): AlertEvent[] {
    const events: AlertEvent[] = [];
    for (const v of this.vehicles.values()) {
      if (v.suspect !== undefined) {
        const held = v.suspect;
        v.suspect = undefined;
        this.feed(v, held.r, held.arrivedAt, held.headTs, events);
      }
      this.closeWindows(v, Number.MAX_SAFE_INTEGER, arrivedAt, events);
    }
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
      this.vehicles.set(id, v);
    }
  }

  private vehicle(id: string): VehicleState {
    let v = this.vehicles.get(id);
    if (v === undefined) {
      v = {
        id,
        watermark: 0,
        newest: 0,
        lastSeq: 0,
        windows: {},
        nextClose: Infinity,
        previous: {},
        lastSeen: {},
        latest: {},
        rules: {},
        episodes: {},
        runs: {},
      };
      this.vehicles.set(id, v);
    }
    return v;
  }

  private feed(v: VehicleState, r: Reading, arrivedAt: number, headTs: number, events: AlertEvent[]): void {
    if (r.seq > v.lastSeq) v.lastSeq = r.seq;
    // The agent's headTs says how far behind the present a backlog is; believed no further
    // than the receive time, so a device clock running ahead cannot make live alerts historical.
    v.newest = Math.max(v.newest, r.ts, Math.min(headTs, arrivedAt));
    if (r.ts > v.watermark) {
      v.watermark = r.ts;
      if (r.ts >= v.nextClose) this.closeWindows(v, r.ts, arrivedAt, events);
    }
    this.counters.readings++;
    if (!this.watched.has(r.sensor)) return;
    v.lastSeen[r.sensor] = Math.max(v.lastSeen[r.sensor] ?? 0, r.ts);
    if (r.quality === 'bad') return;
    const windowMs = this.ruleSet.windowMs;
    const start = r.ts - (r.ts % windowMs);
    const end = start + windowMs;
    if (end <= v.watermark) {
      this.counters.late++; // its window closed already: evaluating it again could raise twice
      this.onDropped?.(r, 'late');
      return;
    }
    const perReading = this.readingRules.get(r.sensor);
    if (perReading !== undefined) {
      const previous = v.previous[r.sensor];
      for (const rule of perReading) detectorOf(rule).reading!(rule, this.ruleState(v, rule), r, previous);
    }
    v.previous[r.sensor] = r;
    let w = v.windows[r.sensor];
    if (w === undefined || w.start !== start) {
      w = new WindowStats(start, end);
      v.windows[r.sensor] = w;
      if (end < v.nextClose) v.nextClose = end;
    }
    w.add(r.ts, r.value);
  }

  /**
   * Closes the windows that ended by `upTo`, one window end at a time: every sensor's mean
   * for that end is known before any rule is judged, since context rules read each other.
   */
  private closeWindows(v: VehicleState, upTo: number, arrivedAt: number, events: AlertEvent[]): void {
    while (v.nextClose <= upTo) {
      const end = v.nextClose;
      const closing: [SensorId, WindowStats][] = [];
      let next = Infinity;
      for (const sensor in v.windows) {
        const w = v.windows[sensor as SensorId]!;
        if (w.end === end) closing.push([sensor as SensorId, w]);
        else if (w.end < next) next = w.end;
      }
      for (const [sensor, w] of closing) {
        delete v.windows[sensor];
        v.latest[sensor] = w.mean;
      }
      v.nextClose = next;
      for (const [sensor, w] of closing) this.judgeWindow(v, sensor, w, arrivedAt, events);
      if (this.dropoutRules.length > 0) this.judgeDropouts(v, end, arrivedAt, events);
    }
  }

  private judgeWindow(v: VehicleState, sensor: SensorId, w: WindowStats, arrivedAt: number, events: AlertEvent[]): void {
    this.counters.windows++;
    const rules = this.windowRules.get(sensor);
    const scores: Record<string, number> = {};
    const onsets: string[] = [];
    if (rules !== undefined) {
      const view = this.view(v, w.start, w.end, w);
      for (const rule of rules) {
        const verdict = detectorOf(rule).window(rule, this.ruleState(v, rule), view, v.episodes[rule.name] !== undefined);
        if (verdict === undefined) continue;
        if (this.episode(v, rule, verdict, w.start, w.end, arrivedAt, events)) onsets.push(rule.name);
        scores[rule.name] = this.shownScore(v, rule, verdict);
      }
    }
    this.onWindow?.({ vehicle: v.id, sensor, start: w.start, end: w.end, count: w.count, mean: w.mean, scores, onsets });
  }

  private judgeDropouts(v: VehicleState, end: number, arrivedAt: number, events: AlertEvent[]): void {
    const start = end - this.ruleSet.windowMs;
    for (const rule of this.dropoutRules) {
      const verdict = detectorOf(rule).window(rule, null, this.view(v, start, end, undefined), v.episodes[rule.name] !== undefined);
      if (verdict === undefined) continue;
      const onset = this.episode(v, rule, verdict, start, end, arrivedAt, events);
      this.onWindow?.({
        vehicle: v.id,
        sensor: rule.sensor,
        start,
        end,
        count: 0,
        mean: NaN,
        scores: { [rule.name]: this.shownScore(v, rule, verdict) },
        onsets: onset ? [rule.name] : [],
      });
    }
  }

  private view(v: VehicleState, start: number, end: number, stats: WindowStats | undefined): WindowView {
    return {
      start,
      end,
      stats,
      windowMs: this.ruleSet.windowMs,
      // A value older than STALE_WINDOWS says nothing about now (the reefer switched off, the engine stopped).
      latest: (s) => ((v.lastSeen[s] ?? -Infinity) >= end - STALE_WINDOWS * this.ruleSet.windowMs ? v.latest[s] : undefined),
      lastSeen: (s) => v.lastSeen[s],
    };
  }

  private ruleState(v: VehicleState, rule: Rule): unknown {
    if (!(rule.name in v.rules)) v.rules[rule.name] = detectorOf(rule).init(rule);
    return v.rules[rule.name];
  }

  /**
   * Moves a rule's episode on by one verdict: a breach lasting forWindows raises it, one
   * lasting levelShiftAfterWindows (rules that learn) ends it as the new normal, and
   * clearAfterWindows in range end it. Returns whether an episode began here.
   */
  private episode(
    v: VehicleState,
    rule: Rule,
    verdict: Verdict,
    start: number,
    end: number,
    arrivedAt: number,
    events: AlertEvent[],
  ): boolean {
    const vehicle = v.id;
    const live = end >= v.newest - this.ruleSet.freshnessMs;
    const episode = v.episodes[rule.name];
    // A window no later than the episode's own was judged already, by whoever raised it: re-read
    // to rebuild (after a restart or a takeover, before the episode began), it must not end it.
    if (episode !== undefined && end <= episode.alert.windowEnd) return false;
    if (!verdict.breach) {
      delete v.runs[rule.name];
      if (episode !== undefined && ++episode.cleanWindows >= rule.clearAfterWindows) this.close(v, rule, episode, end, 'recovered', events);
      return false;
    }
    if (episode !== undefined) {
      episode.cleanWindows = 0;
      episode.breachWindows++;
      if ('levelShiftAfterWindows' in rule && episode.breachWindows >= rule.levelShiftAfterWindows) {
        detectorOf(rule).relearn!(rule, this.ruleState(v, rule));
        this.close(v, rule, episode, end, 'level_shift', events);
      } else if (live && !episode.alert.live) {
        episode.alert = { ...episode.alert, live, windowStart: start, windowEnd: end, observed: verdict.observed, closedAt: arrivedAt };
        events.push({ kind: 'promoted', alert: episode.alert });
      }
      return false;
    }
    // A sensor the fleet has just been told is broken (stuck, jumping) raises nothing about
    // its values: a noisy coolant probe is not a string of overheats.
    if (!HEALTH_RULES.has(rule.type) && this.sensorSuspect(v, rule.sensor)) return false;
    const run = (v.runs[rule.name] ??= { start, n: 0 });
    if (++run.n < rule.forWindows) return false;
    delete v.runs[rule.name];
    const alert: Alert = {
      id: alertId(vehicle, rule.name, run.start),
      vehicle,
      rule: rule.name,
      severity: rule.severity,
      sensor: rule.sensor,
      episodeStart: run.start,
      windowStart: start,
      windowEnd: end,
      observed: verdict.observed,
      expected: verdict.expected,
      message: verdict.message(),
      live,
      driver: rule.driver,
      raisedAt: Date.now(),
      closedAt: arrivedAt,
    };
    v.episodes[rule.name] = { alert, cleanWindows: 0, breachWindows: 1 };
    events.push({ kind: 'raised', alert });
    return true;
  }

  private sensorSuspect(v: VehicleState, sensor: SensorId): boolean {
    for (const name in v.episodes) {
      const alert = v.episodes[name]!.alert;
      if (alert.sensor === sensor && this.healthRuleNames.has(name)) return true;
    }
    return false;
  }

  /**
   * A window's score as the rule means it: a rule that needs its breach to persist for
   * forWindows is not yet sure of a breach that has not lasted that long, so until then
   * its score climbs toward the bound (0.5) with the breach's length and goes no further.
   */
  private shownScore(v: VehicleState, rule: Rule, verdict: Verdict): number {
    const run = v.runs[rule.name];
    if (!verdict.breach || run === undefined) return verdict.score;
    return boundScore(Math.min(boundsWorth(verdict.score), 1) * (run.n / rule.forWindows));
  }

  private close(v: VehicleState, rule: Rule, episode: Episode, at: number, reason: ClearReason, events: AlertEvent[]): void {
    delete v.episodes[rule.name];
    events.push({ kind: 'cleared', alertId: episode.alert.id, vehicle: episode.alert.vehicle, rule: rule.name, at, reason });
  }
}

/** Every sensor a rule looks at: its own and those it compares with or is explained by. */
function sensorsRead(rule: Rule): SensorId[] {
  switch (rule.type) {
    case 'context':
      return [rule.sensor, ...rule.inputs];
    case 'threshold':
      return rule.reference ? [rule.sensor, rule.reference] : [rule.sensor];
    case 'dropout':
      return rule.whileReporting ? [rule.sensor, rule.whileReporting] : [rule.sensor];
    case 'deviation':
      return rule.settleOn ? [rule.sensor, rule.settleOn] : [rule.sensor];
    default:
      return [rule.sensor];
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
