/**
 * Running statistics of one event-time window: O(1) per reading and per rule, so the
 * detector's cost does not grow with the window length.
 */
export class WindowStats {
  count = 0;
  sum = 0;
  sumSq = 0;
  min = Infinity;
  max = -Infinity;
  // Least-squares terms over t = seconds since window start (small numbers, no precision loss).
  sumT = 0;
  sumTT = 0;
  sumTV = 0;

  constructor(
    readonly start: number,
    readonly end: number,
  ) {}

  add(ts: number, value: number): void {
    const t = (ts - this.start) / 1000;
    this.count++;
    this.sum += value;
    this.sumSq += value * value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    this.sumT += t;
    this.sumTT += t * t;
    this.sumTV += t * value;
  }

  get mean(): number {
    return this.sum / this.count;
  }

  /**
   * Least-squares slope in units per minute, and how much of the window's variance the line
   * explains (R², 1 for a clean trend, near 0 for noise); undefined when all readings share
   * one instant.
   */
  trend(): { perMinute: number; fit: number } | undefined {
    const n = this.count;
    const tt = n * this.sumTT - this.sumT * this.sumT;
    if (n < 2 || tt <= 1e-9) return undefined;
    const tv = n * this.sumTV - this.sumT * this.sum;
    const vv = n * this.sumSq - this.sum * this.sum;
    return { perMinute: (tv / tt) * 60, fit: vv <= 1e-12 ? 0 : (tv * tv) / (tt * vv) };
  }
}
