export interface SignInThrottleOptions {
  /** Attempts a key may fail in a row before it has to wait. */
  burst: number;
  /** One more attempt per this much time once the burst is spent. */
  refillMs: number;
  /** Keys remembered at most, per kind; past it the longest-known go first. */
  maxKeys: number;
}

export const DEFAULT_SIGN_IN_THROTTLE: SignInThrottleOptions = { burst: 10, refillMs: 6000, maxKeys: 10_000 };

/** Why an attempt has to wait, and how long. */
export interface Throttled {
  by: 'address' | 'user';
  retryAfterMs: number;
}

/**
 * Guessing passwords costs time: each client address and each user name has a bucket of
 * `burst` attempts, refilled at one per `refillMs`. An attempt takes a token from both
 * before its password is checked (so attempts in flight count too) and gives them back
 * when it succeeds; an empty bucket refuses the attempt unchecked. Per address stops one
 * client trying many names, per user many clients trying one name.
 */
export class SignInThrottle {
  private readonly addresses: Buckets;
  private readonly users: Buckets;

  constructor(opts: SignInThrottleOptions = DEFAULT_SIGN_IN_THROTTLE) {
    this.addresses = new Buckets(opts);
    this.users = new Buckets(opts);
  }

  /** Takes the attempt's tokens, or says why it must wait (taking nothing). */
  attempt(address: string, user: string, now: number): Throttled | undefined {
    const addressWait = this.addresses.waitMs(address, now);
    if (addressWait > 0) return { by: 'address', retryAfterMs: addressWait };
    const userWait = this.users.waitMs(user, now);
    if (userWait > 0) return { by: 'user', retryAfterMs: userWait };
    this.addresses.take(address, now);
    this.users.take(user, now);
    return undefined;
  }

  /** A successful sign-in was not a guess: its tokens go back. */
  succeeded(address: string, user: string, now: number): void {
    this.addresses.give(address, now);
    this.users.give(user, now);
  }
}

class Buckets {
  /** Tokens left as of `at`; a key whose bucket is full again is forgotten. */
  private readonly levels = new Map<string, { tokens: number; at: number }>();

  constructor(private readonly opts: SignInThrottleOptions) {}

  waitMs(key: string, now: number): number {
    const tokens = this.level(key, now);
    return tokens >= 1 ? 0 : Math.ceil((1 - tokens) * this.opts.refillMs);
  }

  take(key: string, now: number): void {
    this.set(key, this.level(key, now) - 1, now);
  }

  give(key: string, now: number): void {
    this.set(key, this.level(key, now) + 1, now);
  }

  private level(key: string, now: number): number {
    const b = this.levels.get(key);
    return b === undefined ? this.opts.burst : Math.min(this.opts.burst, b.tokens + (now - b.at) / this.opts.refillMs);
  }

  private set(key: string, tokens: number, now: number): void {
    this.levels.delete(key);
    if (tokens >= this.opts.burst) return;
    if (this.levels.size >= this.opts.maxKeys) this.prune(now);
    this.levels.set(key, { tokens, at: now });
  }

  /** Full buckets first; if none, the key touched longest ago (Map order is insertion order). */
  private prune(now: number): void {
    for (const key of this.levels.keys()) if (this.level(key, now) >= this.opts.burst) this.levels.delete(key);
    if (this.levels.size >= this.opts.maxKeys) this.levels.delete(this.levels.keys().next().value!);
  }
}
