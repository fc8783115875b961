/** A lane's dedupe state as intents and heads carry it: per vehicle, archived seqs as sorted [lo, hi] intervals. */
export type DedupeJson = Record<string, [number, number][]>;

/**
 * Intervals kept per vehicle. A vehicle's seqs are archived in order, so it has one interval
 * unless gaps split it; past the cap the lowest intervals but the first are forgotten, which
 * only means a repeat of a very old reading would be archived again, never that a reading
 * is dropped. The first stays: it holds the lowest seq archived, below which a backfill
 * from the operational store takes over.
 */
export const MAX_INTERVALS_PER_VEHICLE = 32;

/**
 * Which (vehicle, seq) a lane has archived, so a reading the stream carries twice (an agent
 * resending a batch whose PUBACK was lost) is archived once. A pure function of the records
 * it is shown, in order: a replay from the same state drops the same repeats.
 */
export class DedupeState {
  private constructor(
    private readonly vehicles: Map<string, [number, number][]>,
    private readonly cap: number,
  ) {}

  static empty(cap = MAX_INTERVALS_PER_VEHICLE): DedupeState {
    return new DedupeState(new Map(), cap);
  }

  static fromJson(json: DedupeJson, cap = MAX_INTERVALS_PER_VEHICLE): DedupeState {
    return new DedupeState(new Map(Object.entries(json).map(([v, ivs]) => [v, ivs.map(([lo, hi]) => [lo, hi])])), cap);
  }

  /** Vehicles in key order, so equal states serialize to equal bytes. */
  toJson(): DedupeJson {
    const out: DedupeJson = {};
    for (const v of [...this.vehicles.keys()].sort()) out[v] = this.vehicles.get(v)!.map(([lo, hi]) => [lo, hi]);
    return out;
  }

  clone(): DedupeState {
    return DedupeState.fromJson(this.toJson(), this.cap);
  }

  /** The lowest seq remembered for the vehicle, if any. */
  lowest(vehicle: string): number | undefined {
    return this.vehicles.get(vehicle)?.[0]?.[0];
  }

  /** Records the reading; false when it was archived before (a repeat to drop). */
  admit(vehicle: string, seq: number): boolean {
    let ivs = this.vehicles.get(vehicle);
    if (!ivs) this.vehicles.set(vehicle, (ivs = []));
    // The interval at or before seq: readings come mostly in order, so search from the end.
    let i = ivs.length - 1;
    while (i >= 0 && ivs[i]![0] > seq) i--;
    if (i >= 0 && ivs[i]![1] >= seq) return false;
    const before = i >= 0 && ivs[i]![1] === seq - 1 ? ivs[i] : undefined;
    const after = ivs[i + 1] !== undefined && ivs[i + 1]![0] === seq + 1 ? ivs[i + 1] : undefined;
    if (before && after) {
      before[1] = after[1];
      ivs.splice(i + 1, 1);
    } else if (before) before[1] = seq;
    else if (after) after[0] = seq;
    else ivs.splice(i + 1, 0, [seq, seq]);
    if (ivs.length > this.cap) ivs.splice(1, ivs.length - this.cap);
    return true;
  }
}
