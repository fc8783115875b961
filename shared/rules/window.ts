/**
 * Running statistics of one event-time window: O(1) per reading and per rule, so the
 * detector's cost does not grow with the window length.
 */
export class WindowStats {
  count = 0;
  sum = 0;
  sumSq = 0;
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
    this.sumT += t;
    this.sumTT += t * t;
    this.sumTV += t * value;
  }

  get mean(): number {
    return this.sum / this.count;
  }

  /** Slope in units per minute, or undefined when all readings share one instant. */
  slopePerMinute(): number | undefined {
    const n = this.count;
    const denom = n * this.sumTT - this.sumT * this.sumT;
    if (n < 2 || denom <= 1e-9) return undefined;
    return ((n * this.sumTV - this.sumT * this.sum) / denom) * 60;
  }
}

/** Exponentially weighted mean and variance of window means: a vehicle's own "normal". */
export class Baseline {
  windows = 0;
  mean = 0;
  variance = 0;

  update(x: number, halfLifeWindows: number, warmupWindows: number): void {
    this.windows++;
    if (this.windows === 1) {
      this.mean = x;
      return;
    }
    // While warming up weight evenly (a plain average); after that only the configured
    // half-life. A plain average kept beyond warm-up (weight 1/n until 1/n drops below the
    // half-life's weight, ~87 minutes for an hour's half-life) follows the sub-threshold start
    // of a slow fault so closely that a cargo warming 1 °C/min never got k std away.
    const decay = 1 - Math.pow(0.5, 1 / halfLifeWindows);
    const alpha = this.windows <= warmupWindows ? Math.max(1 / this.windows, decay) : decay;
    const d = x - this.mean;
    this.mean += alpha * d;
    this.variance = (1 - alpha) * (this.variance + alpha * d * d);
  }
}
