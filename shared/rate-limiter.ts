/**
 * A token bucket that reserves rather than refuses: `reserve()` says how long a publish
 * must wait for its token. Waits grow with each reservation, so publishes released after
 * their waits keep the order they arrived in. The gateway holds PUBACKs with it; the agent
 * asks `delay()` first and publishes only when a token is at hand.
 */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Milliseconds until this publish may go ahead: 0 when a token is at hand. */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens * 1000) / this.perSecond);
  }

  /** Milliseconds until a token is at hand, taking none. */
  delay(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) * 1000) / this.perSecond);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
  }
}
