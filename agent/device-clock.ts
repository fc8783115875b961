import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { Sample } from '../shared/contract/reading.js';

/**
 * `system`: the system clock is right from boot (a real-time clock, a server, the simulator).
 * `sync`: it is not (a Raspberry Pi has no RTC) until GPS time arrives or NTP has set it.
 */
export type ClockTrust = 'system' | 'sync';
export type ClockSource = 'system' | 'ntp' | 'gps';

export interface DeviceClockOptions {
  trust: ClockTrust;
  /** A file that exists once NTP has set the system clock (systemd-timesyncd's marker). */
  syncedFile: string;
  /** Unsynced readings wait this long for a sync before they are sent as they are. */
  holdMs: number;
}

/** What the clock needs from the machine, replaceable in tests. */
export interface ClockHost {
  /** CLOCK_MONOTONIC in ms: one time line per boot, also across restarts of the agent. */
  monotonicMs(): number;
  wallMs(): number;
  bootId(): string;
  exists(path: string): boolean;
}

export const systemHost: ClockHost = {
  // libuv's hrtime is CLOCK_MONOTONIC on Linux, which counts from boot and is never set.
  monotonicMs: () => Number(process.hrtime.bigint() / 1000n) / 1000,
  wallMs: () => Date.now(),
  bootId: () => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      // Without a boot id every start counts as a new boot: older unsynced readings are then estimated, never mis-corrected.
      return randomUUID();
    }
  },
  exists: existsSync,
};

/** Where an unsynced reading sits on this boot's monotonic time line, so it can be corrected later. */
export interface Unsynced {
  mono: number;
  boot: string;
}

export type StampedSample = Sample & { unsynced?: Unsynced };

export interface Sync {
  source: ClockSource;
  /**
   * UTC = monotonic + offset for readings of this boot; it is also the UTC at which this
   * boot's monotonic clock read 0, so every earlier boot ended before it.
   */
  offsetMs: number;
  boot: string;
}

export interface ClockStatus {
  trust: ClockTrust;
  synced: boolean;
  source?: ClockSource;
  /** True while unsynced readings are held back waiting for a sync. */
  holding: boolean;
  /** Why the last GPS time was refused, until one is taken again. */
  gpsRefused?: string;
}

/** Passed with the `gpsRefused` event. */
export interface GpsRefusal {
  reason: string;
  /** The first of a run of refusals: the one worth a log line. */
  first: boolean;
}

/**
 * How far a GPS time may stray from a clock already trusted. GPS UTC itself is exact, but a
 * receiver that has not yet received the leap seconds reports GPS time, 18 s off; anything
 * beyond this is a receiver whose date is wrong.
 */
export const GPS_TIME_TOLERANCE_MS = 60_000;

/**
 * The agent's idea of UTC. Sensors stamp readings `synced` when their time comes from an
 * authority (GPS UTC, a simulation) and `unsynced` when it is the host's system clock; this
 * clock vouches for host stamps once it trusts the host, rebases them onto GPS time when only
 * GPS is known, and otherwise marks where they sit on the monotonic time line so that the
 * buffer can correct them when a sync arrives. Emits `synced` (a Sync) once, `release` when
 * the hold ends without one, and `gpsRefused` (a GpsRefusal) for each GPS time it refuses.
 */
export class DeviceClock extends EventEmitter {
  private readonly boot: string;
  private readonly startedMono: number;
  private hostTrusted: boolean;
  private gpsOffsetMs: number | undefined;
  private source: ClockSource | undefined;
  private poll: NodeJS.Timeout | undefined;
  private holdTimer: NodeJS.Timeout | undefined;
  private held: boolean;
  private gpsRefused: string | undefined;

  constructor(
    private readonly opts: DeviceClockOptions,
    private readonly host: ClockHost = systemHost,
    /** The newest event time the device has stored: time does not run backwards past it. */
    private readonly newestStoredTs: () => number | undefined = () => undefined,
  ) {
    super();
    if (!(Number.isFinite(opts.holdMs) && opts.holdMs >= 0)) throw new RangeError(`clock hold must be ≥ 0 ms, got ${opts.holdMs}`);
    this.boot = host.bootId();
    this.startedMono = host.monotonicMs();
    this.hostTrusted = opts.trust === 'system';
    this.source = this.hostTrusted ? 'system' : undefined;
    this.held = !this.hostTrusted && opts.holdMs > 0;
  }

  /** Starts watching for NTP and the end of the hold. */
  start(): void {
    if (this.synced()) return;
    this.checkNtp();
    if (this.synced()) return;
    this.poll = setInterval(() => this.checkNtp(), 1000);
    this.poll.unref();
    if (this.held) {
      this.holdTimer = setTimeout(() => {
        this.held = false;
        this.emit('release');
      }, this.opts.holdMs);
      this.holdTimer.unref();
    }
  }

  stop(): void {
    clearInterval(this.poll);
    clearTimeout(this.holdTimer);
  }

  synced(): boolean {
    return this.source !== undefined;
  }

  /** True while unsynced readings should stay in the buffer rather than go out with a guessed time. */
  holding(): boolean {
    return this.held && !this.synced();
  }

  status(): ClockStatus {
    const s: ClockStatus = { trust: this.opts.trust, synced: this.synced(), holding: this.holding() };
    if (this.source) s.source = this.source;
    if (this.gpsRefused !== undefined) s.gpsRefused = this.gpsRefused;
    return s;
  }

  /**
   * GPS UTC as it arrived (a burst with a fix and a date). Later fixes keep the offset current.
   * Returns why it is refused, if it is: it disagrees with a clock already trusted (the system
   * clock once NTP set it, the GPS time in use, the newest stored reading) by more than
   * GPS_TIME_TOLERANCE_MS. A receiver's date can be wrong (week rollover, a reset); the clock
   * every reading takes must not be.
   */
  gpsTime(utcMs: number): string | undefined {
    const refused = this.disagreement(utcMs);
    if (refused !== undefined) {
      const refusal: GpsRefusal = { reason: refused, first: this.gpsRefused === undefined };
      this.gpsRefused = refused;
      this.emit('gpsRefused', refusal);
      return refused;
    }
    this.gpsRefused = undefined;
    this.gpsOffsetMs = utcMs - this.host.monotonicMs();
    if (!this.synced()) this.becomeSynced('gps', this.gpsOffsetMs);
    return undefined;
  }

  private disagreement(utcMs: number): string | undefined {
    const gps = `GPS time ${new Date(utcMs).toISOString()} is`;
    const off = (trusted: number, what: string) =>
      Math.abs(utcMs - trusted) > GPS_TIME_TOLERANCE_MS ? `${gps} ${span(utcMs - trusted)} ${what}` : undefined;
    if (this.hostTrusted) return off(this.host.wallMs(), this.source === 'ntp' ? 'the system clock (NTP)' : 'the system clock');
    if (this.gpsOffsetMs !== undefined) return off(this.host.monotonicMs() + this.gpsOffsetMs, 'the GPS time in use');
    // Only a floor: the device may have been off for a month since.
    const newest = this.newestStoredTs();
    if (newest !== undefined && utcMs < newest - GPS_TIME_TOLERANCE_MS) {
      return `${gps} ${span(utcMs - newest)} the newest stored reading (${new Date(newest).toISOString()})`;
    }
    return undefined;
  }

  /** A sensor's sample with its time made trustworthy where it can be, or marked for correction. */
  stamp(s: Sample): StampedSample {
    if (s.clock === 'synced' || this.hostTrusted) return { ...s, clock: 'synced' };
    // The sample was stamped a moment ago by the host clock; carry that age onto the monotonic line.
    const mono = this.host.monotonicMs() - (this.host.wallMs() - s.ts);
    if (this.gpsOffsetMs !== undefined) return { ...s, ts: Math.round(mono + this.gpsOffsetMs), clock: 'synced' };
    return { ...s, unsynced: { mono, boot: this.boot } };
  }

  private checkNtp(): void {
    if (this.hostTrusted || !this.host.exists(this.opts.syncedFile)) return;
    this.hostTrusted = true;
    clearInterval(this.poll);
    // A GPS sync came first: its offset already corrected the backlog, NTP only takes over new stamps.
    if (!this.synced()) this.becomeSynced('ntp', this.host.wallMs() - this.host.monotonicMs());
    else this.source = 'ntp';
  }

  private becomeSynced(source: ClockSource, offsetMs: number): void {
    this.source = source;
    clearTimeout(this.holdTimer);
    const sync: Sync = { source, offsetMs, boot: this.boot };
    this.emit('synced', sync);
  }

  /** How long this agent has run, for logs: a sync long after start means a long cold start. */
  uptimeMs(): number {
    return this.host.monotonicMs() - this.startedMono;
  }
}

/** A time difference in words: "19.6 years behind", "2.0 days ahead of", "90 s behind". */
function span(diffMs: number): string {
  const ms = Math.abs(diffMs);
  const units: [number, string][] = [
    [365.25 * 86_400_000, 'years'],
    [86_400_000, 'days'],
    [3_600_000, 'h'],
    [60_000, 'min'],
  ];
  const [size, unit] = units.find(([size]) => ms >= size) ?? [1000, 's'];
  return `${(ms / size).toFixed(unit === 's' ? 0 : 1)} ${unit} ${diffMs < 0 ? 'behind' : 'ahead of'}`;
}
