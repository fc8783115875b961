import type { GpsFix } from '../../shared/contract/reading.js';
import type { Gga, Gll, Gns, Gsa, NmeaSentence, Rmc, Vtg, Zda } from './nmea.js';

/** What one receiver cycle (the sentences sharing one UTC time) says. */
export interface Fix {
  /** The cycle's UTC time of day, ms since midnight; absent for a burst whose time fields are blank. */
  timeMs?: number;
  /**
   * ms since the epoch: the time of day on the date of this cycle's RMC or ZDA, else of the last
   * cycle with a fix that had one. As the receiver says it: its week rollover is not corrected.
   */
  utcMs?: number;
  fix: GpsFix;
  /** Only with a fix: without one, receivers send empty fields, zeros or their last position. */
  lat?: number;
  lon?: number;
  speedKmh?: number;
  courseDeg?: number;
}

const DAY_MS = 86_400_000;

/** The key of a burst whose time-bearing sentences came with their time fields blank. */
const BLANK = 'blank';

interface Cycle {
  /** The time of day its time-bearing sentences share, or BLANK. */
  key?: number | typeof BLANK;
  /** The type of its first time-bearing sentence: blank bursts all share one key, and the next begins with it again. */
  opener?: NmeaSentence['type'];
  GGA?: Gga;
  RMC?: Rmc;
  GNS?: Gns;
  GLL?: Gll;
  VTG?: Vtg;
  GSA?: Gsa;
  ZDA?: Zda;
}

/**
 * Combines sentences into one fix per cycle. A receiver sends a burst of sentences per fix;
 * GGA, RMC, GNS, GLL and ZDA carry its time, VTG and GSA do not and belong to the burst they
 * arrive in. A cycle ends when a sentence with another time arrives (a blank time is another
 * time: receivers blank it when they lose the fix), or when the caller calls `flush` (the
 * sensor does after a quiet gap, so a fix is not held back a whole second).
 */
export class FixCycle {
  private cycle: Cycle = {};
  private lastDone: number | undefined;
  /** What the last fix was, for cycles that say only "a fix" (their GGA and GSA lost). */
  private lastDimension: '2d' | '3d' = '2d';
  /**
   * The last date of a cycle with a fix, for cycles without RMC or ZDA. A receiver without a
   * fix may not know the date (1980, 000000, its firmware's), so its dates are never carried.
   */
  private date: { dateMs: number; timeMs: number } | undefined;

  /** Adds a sentence; returns the previous cycle's fix when this one starts a new cycle. */
  push(s: NmeaSentence): Fix | undefined {
    const key = cycleKey(s);
    // A straggler of a cycle already flushed: reporting it again would duplicate that fix.
    if (key !== undefined && key === this.lastDone) return undefined;
    let done: Fix | undefined;
    const next = key === BLANK && this.cycle.key === BLANK && s.type === this.cycle.opener;
    if (key !== undefined && this.cycle.key !== undefined && (key !== this.cycle.key || next)) done = this.flush();
    if (key !== undefined && this.cycle.key === undefined) this.cycle = { ...this.cycle, key, opener: s.type };
    const held = this.cycle[s.type];
    // A sentence that says nothing never takes the place of one that did.
    if (!(held && empty(s) && !empty(held))) (this.cycle as Record<string, NmeaSentence>)[s.type] = s;
    return done;
  }

  /**
   * The current cycle's UTC (as the receiver says it) once it can be trusted as a time: the
   * cycle has its time of day and a date (its own, or carried from the last fix), a sentence
   * of it says there is a fix and none says there is none. Undefined until then.
   */
  validTime(): number | undefined {
    const c = this.cycle;
    if (typeof c.key !== 'number' || !saysFix(c) || saysNoFix(c)) return undefined;
    return this.utc(c.key, c.RMC?.dateMs ?? c.ZDA?.dateMs);
  }

  /** Ends the current cycle; undefined when it has no time (only VTG/GSA, or nothing). */
  flush(): Fix | undefined {
    const c = this.cycle;
    this.cycle = {};
    if (c.key === undefined) return undefined;
    const timeMs = c.key === BLANK ? undefined : c.key;
    if (timeMs !== undefined) this.lastDone = timeMs;
    // Without GSA, a GGA or GNS fix with an altitude is 3D (as gpsd reads it); RMC and GLL say
    // only "a fix", and a receiver's fix does not change dimension because a sentence was lost.
    const withAltitude = c.GGA ?? c.GNS;
    const dimension = c.GSA?.fix ?? (withAltitude ? (withAltitude.altitudeM !== undefined ? '3d' : '2d') : this.lastDimension);
    const fix: Fix = { fix: saysNoFix(c) || dimension === 'none' ? 'none' : dimension };
    if (timeMs !== undefined) fix.timeMs = timeMs;
    const ownDate = c.RMC?.dateMs ?? c.ZDA?.dateMs;
    if (fix.fix !== 'none') {
      this.lastDimension = fix.fix;
      const at = [c.GGA, c.RMC, c.GNS, c.GLL].find((s) => s?.lat !== undefined && s.lon !== undefined);
      if (at) {
        fix.lat = at.lat;
        fix.lon = at.lon;
      }
      const speed = c.RMC?.speedKmh ?? c.VTG?.speedKmh;
      if (speed !== undefined) fix.speedKmh = speed;
      const course = c.RMC?.courseDeg ?? c.VTG?.courseDeg;
      if (course !== undefined) fix.courseDeg = course;
      if (ownDate !== undefined && timeMs !== undefined) this.date = { dateMs: ownDate, timeMs };
    }
    if (timeMs !== undefined) {
      const utcMs = this.utc(timeMs, ownDate);
      if (utcMs !== undefined) fix.utcMs = utcMs;
    }
    return fix;
  }

  private utc(timeMs: number, ownDate: number | undefined): number | undefined {
    if (ownDate !== undefined) return ownDate + timeMs;
    if (this.date === undefined) return undefined;
    // A cycle past midnight whose date did not come is on the next day.
    const rolled = timeMs < this.date.timeMs - DAY_MS / 2;
    return this.date.dateMs + (rolled ? DAY_MS : 0) + timeMs;
  }
}

function cycleKey(s: NmeaSentence): number | typeof BLANK | undefined {
  return s.type === 'VTG' || s.type === 'GSA' ? undefined : (s.timeMs ?? BLANK);
}

function saysFix(c: Cycle): boolean {
  return (c.GGA !== undefined && c.GGA.quality > 0) || c.RMC?.valid === true || c.GNS?.valid === true || c.GLL?.valid === true;
}

function saysNoFix(c: Cycle): boolean {
  return c.GGA?.quality === 0 || c.RMC?.valid === false || c.GNS?.valid === false || c.GLL?.valid === false || c.GSA?.fix === 'none';
}

/** Whether a sentence carries nothing a fix is made of. */
function empty(s: NmeaSentence): boolean {
  switch (s.type) {
    case 'VTG':
      return s.speedKmh === undefined && s.courseDeg === undefined;
    case 'GSA':
      return s.fix === 'none';
    case 'ZDA':
      return s.dateMs === undefined && s.timeMs === undefined;
    default:
      return s.lat === undefined && s.timeMs === undefined;
  }
}
