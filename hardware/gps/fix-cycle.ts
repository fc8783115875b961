import type { GpsFix } from '../../shared/contract/reading.js';
import type { Gga, Gsa, NmeaSentence, Rmc, Vtg } from './nmea.js';

/** What one receiver cycle (the sentences sharing one UTC time) says. */
export interface Fix {
  /** ms since the epoch: the cycle's time on the date of its RMC, or of the last RMC seen. */
  utcMs?: number;
  fix: GpsFix;
  lat?: number;
  lon?: number;
  speedKmh?: number;
  courseDeg?: number;
}

const DAY_MS = 86_400_000;

interface Cycle {
  timeMs?: number;
  GGA?: Gga;
  RMC?: Rmc;
  VTG?: Vtg;
  GSA?: Gsa;
}

/**
 * Combines sentences into one fix per cycle. A receiver sends a burst of sentences per fix;
 * GGA and RMC carry its time, VTG and GSA do not and belong to the burst they arrive in.
 * A cycle ends when a sentence with another time arrives, or when the caller calls `flush`
 * (the sensor does after a quiet gap, so a fix is not held back a whole second).
 */
export class FixCycle {
  private cycle: Cycle = {};
  private lastDone: number | undefined;
  /** What the last fix was, for cycles that say only "a fix" (their GGA and GSA lost). */
  private lastDimension: '2d' | '3d' = '2d';
  /** The last RMC date, for cycles whose RMC was lost. */
  private date: { dateMs: number; timeMs: number } | undefined;

  /** Adds a sentence; returns the previous cycle's fix when this one starts a new cycle. */
  push(s: NmeaSentence): Fix | undefined {
    const t = s.type === 'GGA' || s.type === 'RMC' ? s.timeMs : undefined;
    // A straggler of a cycle already flushed: reporting it again would duplicate that fix.
    if (t !== undefined && t === this.lastDone) return undefined;
    let done: Fix | undefined;
    if (t !== undefined && this.cycle.timeMs !== undefined && t !== this.cycle.timeMs) done = this.flush();
    if (t !== undefined) this.cycle.timeMs = t;
    (this.cycle as Record<string, NmeaSentence>)[s.type] = s;
    return done;
  }

  /** Ends the current cycle; undefined when it has no time (only VTG/GSA, or nothing). */
  flush(): Fix | undefined {
    const { timeMs, GGA: gga, RMC: rmc, VTG: vtg, GSA: gsa } = this.cycle;
    this.cycle = {};
    if (timeMs === undefined) return undefined;
    this.lastDone = timeMs;
    const noFix = rmc?.valid === false || gga?.quality === 0 || gsa?.fix === 'none';
    // Without GSA, a GGA fix with an altitude is 3D (as gpsd reads it); RMC alone says only "a
    // fix", and a receiver's fix does not change dimension because a sentence was lost.
    const dimension = gsa?.fix ?? (gga ? (gga.altitudeM !== undefined ? '3d' : '2d') : this.lastDimension);
    const fix: Fix = { fix: noFix || dimension === 'none' ? 'none' : dimension };
    if (fix.fix !== 'none') this.lastDimension = fix.fix;
    const at = [gga, rmc].find((s) => s?.lat !== undefined && s.lon !== undefined);
    if (at) {
      fix.lat = at.lat;
      fix.lon = at.lon;
    }
    const speed = rmc?.speedKmh ?? vtg?.speedKmh;
    if (speed !== undefined) fix.speedKmh = speed;
    const course = rmc?.courseDeg ?? vtg?.courseDeg;
    if (course !== undefined) fix.courseDeg = course;
    if (rmc?.dateMs !== undefined) this.date = { dateMs: rmc.dateMs, timeMs };
    if (this.date) {
      // A cycle past midnight whose RMC was lost is on the next day.
      const rolled = timeMs < this.date.timeMs - DAY_MS / 2;
      fix.utcMs = this.date.dateMs + (rolled ? DAY_MS : 0) + timeMs;
    }
    return fix;
  }
}
