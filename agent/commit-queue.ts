import { backoffDelay } from '../shared/backoff.js';
import { sensorSpec } from '../shared/contract/reading.js';
import type { Logger } from '../shared/log.js';
import type { StampedSample } from './device-clock.js';

/** Why the buffer refused a write: the disk (or the user's quota) is full, or the storage failed. */
export type WriteFailure = 'disk_full' | 'io_error';

/**
 * The errors a full or failing disk gives, as SQLite and Node name them. Anything else (a
 * corrupt file, a bug) is none of these and still stops the agent, to be seen and fixed.
 */
export function writeFailure(err: unknown): WriteFailure | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'disk_full';
  if (code.startsWith('SQLITE_IOERR') || code === 'EIO') return 'io_error';
  return undefined;
}

/**
 * At most `cap` of `samples`, dropping as the buffer evicts: the lowest priority first
 * (GPS, then speed and rpm, temperatures last), the oldest first within a priority.
 */
export function shed(samples: StampedSample[], cap: number): StampedSample[] {
  let excess = samples.length - cap;
  if (excess <= 0) return samples;
  const perPriority = new Map<number, number>();
  for (const s of samples) {
    const p = sensorSpec(s.sensor).priority;
    perPriority.set(p, (perPriority.get(p) ?? 0) + 1);
  }
  const toDrop = new Map<number, number>();
  for (const [priority, n] of [...perPriority].sort(([a], [b]) => a - b)) {
    toDrop.set(priority, Math.min(n, excess));
    excess -= toDrop.get(priority)!;
  }
  return samples.filter((s) => {
    const left = toDrop.get(sensorSpec(s.sensor).priority)!;
    if (left === 0) return true;
    toDrop.set(sensorSpec(s.sensor).priority, left - 1);
    return false;
  });
}

export interface CommitQueueOptions {
  /** Samples held in memory while the buffer cannot be written, at most. */
  maxHeld: number;
  /** First retry delay after a failed write; it doubles (with jitter) up to retryMaxMs. */
  retryBaseMs: number;
  retryMaxMs: number;
}

export interface CommitQueueEvents {
  writeError(code: string): void;
  dropped(reason: WriteFailure, samples: number): void;
}

export interface WriteHealth {
  state: 'ok' | 'degraded';
  detail?: string;
  /** Samples taken but not yet committed. */
  held: number;
  /** Samples dropped from memory since start because the buffer stayed unwritable past the cap. */
  dropped: number;
  /** Buffer writes that failed since start. */
  writeErrors: number;
}

interface Episode {
  failure: WriteFailure;
  code: string;
  since: number;
  attempts: number;
  retryAt: number;
  dropped: number;
}

/**
 * The samples between the sensors and the durable buffer. Normally they stay here one
 * commit interval. When the disk is full (or failing) a commit throws: the samples stay
 * here in order, capped, and the commit is retried with backoff; once a write succeeds they
 * are committed together, under the seqs they would have had. One error is logged per
 * episode, not one per commit interval.
 */
export class CommitQueue {
  private samples: StampedSample[] = [];
  private episode?: Episode;
  private writeErrors = 0;
  private dropped = 0;

  constructor(
    private readonly opts: CommitQueueOptions,
    private readonly log: Logger,
    private readonly events: CommitQueueEvents,
  ) {}

  push(sample: StampedSample): void {
    this.samples.push(sample);
  }

  get length(): number {
    return this.samples.length;
  }

  /** True from a failed write until a write succeeds. */
  get failing(): boolean {
    return this.episode !== undefined;
  }

  /** Whether a write may be tried now, or the backoff after a failure says wait. */
  due(now = Date.now()): boolean {
    return this.episode === undefined || now >= this.episode.retryAt;
  }

  /**
   * Commits every queued sample through `write`; the samples leave the queue only if it
   * succeeds. Returns its result, or undefined when the disk refused (the samples are held).
   */
  commit<T>(write: (samples: StampedSample[]) => T): T | undefined {
    const samples = this.samples;
    const out = this.attempt(() => write(samples));
    if (out === undefined) this.trim();
    else this.samples = [];
    return out;
  }

  /**
   * Runs another buffer write (a clock correction, a record of a shown alert) under the same
   * episode. `write` must return a value: undefined means the disk refused.
   */
  attempt<T>(write: () => T): T | undefined {
    let out: T;
    try {
      out = write();
    } catch (err) {
      const failure = writeFailure(err);
      if (failure === undefined) throw err;
      this.failed(failure, err as Error & { code: string });
      return undefined;
    }
    this.recovered();
    return out;
  }

  /** Keeps the held samples within the cap between retries. */
  trim(): void {
    const before = this.samples.length;
    this.samples = shed(this.samples, this.opts.maxHeld);
    const n = before - this.samples.length;
    if (n === 0 || this.episode === undefined) return;
    if (this.episode.dropped === 0) {
      this.log.error(
        { maxHeld: this.opts.maxHeld },
        'buffer still not writable and the memory hold is full: dropping the lowest-priority samples',
      );
    }
    this.episode.dropped += n;
    this.dropped += n;
    this.events.dropped(this.episode.failure, n);
  }

  health(): WriteHealth {
    const h: WriteHealth = { state: 'ok', held: this.samples.length, dropped: this.dropped, writeErrors: this.writeErrors };
    if (this.episode === undefined) return h;
    const what = this.episode.failure === 'disk_full' ? 'disk full' : `write error ${this.episode.code}`;
    return { ...h, state: 'degraded', detail: `buffer ${what}: ${this.samples.length} samples held in memory` };
  }

  private failed(failure: WriteFailure, err: Error & { code: string }): void {
    this.writeErrors++;
    this.events.writeError(err.code);
    const now = Date.now();
    if (this.episode === undefined) {
      this.episode = { failure, code: err.code, since: now, attempts: 0, retryAt: now, dropped: 0 };
      this.log.error(
        { err: err.message, code: err.code, held: this.samples.length, maxHeld: this.opts.maxHeld },
        `buffer write failed (${failure === 'disk_full' ? 'disk full' : 'I/O error'}): holding samples in memory and retrying`,
      );
    }
    this.episode.retryAt = now + backoffDelay(this.episode.attempts++, this.opts.retryBaseMs, this.opts.retryMaxMs);
  }

  private recovered(): void {
    const e = this.episode;
    if (e === undefined) return;
    this.episode = undefined;
    this.log.warn(
      { failedForMs: Date.now() - e.since, attempts: e.attempts, held: this.samples.length, dropped: e.dropped },
      'buffer writable again',
    );
  }
}
