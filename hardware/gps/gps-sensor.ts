import { SerialPort } from 'serialport';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import { quantize } from '../../shared/contract/codec.js';
import { sensorSpec, type GpsFix, type Quality, type Sample } from '../../shared/contract/reading.js';
import { motionBetween, type Position } from './derived-motion.js';
import { FixCycle, type Fix } from './fix-cycle.js';
import { MAX_SENTENCE, parseLine } from './nmea.js';
import { correctWeekRollover } from './week-rollover.js';

export interface GpsSensorOptions {
  /** Instance name within the agent. */
  name?: string;
  /** The receiver's serial device, e.g. /dev/ttyAMA0 or a udev link such as /dev/fleet-gps. */
  path: string;
  /** 8N1 at this rate; most receivers ship at 9600. */
  baudRate?: number;
  /** Silence (no valid sentence) after which health turns degraded. */
  staleAfterMs?: number;
  /** While the port is down, how often to try opening it again. */
  reopenMs?: number;
  /**
   * Called with GPS UTC (ms, the week rollover corrected) as each burst with a fix and a date
   * arrives, so the agent can discipline its clock; returns why it refuses that time, if it
   * does, and a refused time stamps no sample. It lags true UTC by the serial transfer of the
   * burst so far: tens of ms at 9600 baud.
   */
  onTime?: (utcMs: number) => string | undefined;
}

/** Sentences of one fix arrive back to back; this much quiet means the burst is over. */
const CYCLE_GAP_MS = 400;
/** An unterminated line is cut to its tail, which is where a sentence would start. */
const MAX_PENDING = 2 * MAX_SENTENCE;
/** Positions further apart in time than this say too little about the speed in between. */
const MAX_DERIVE_GAP_MS = 3000;
const DAY_MS = 86_400_000;

const QUALITY: Record<GpsFix, Quality> = { '3d': 'good', '2d': 'uncertain', none: 'bad' };

/** What the receiver leaves out, as health says it. */
const LACKS = {
  speed: 'speed derived from positions (no speed in RMC or VTG)',
  date: 'no date from the receiver (no RMC or ZDA): samples take the system clock',
} as const;

/** The GPS time offered to the agent for one cycle, and its answer. */
interface Offered {
  /** As the receiver said it, to find its cycle. */
  rawUtcMs: number;
  utcMs: number;
  /** Weeks the rollover correction added. */
  weeks: number;
  refused?: string;
  at: number;
}

/**
 * An NMEA 0183 receiver on a serial port: one `gps` sample per receiver cycle with a fix and a
 * position. Cycles without a fix give no sample; they show in health instead.
 */
export class GpsSensor implements Sensor {
  readonly name: string;
  private readonly path: string;
  private readonly baudRate: number;
  private readonly staleAfterMs: number;
  private readonly reopenMs: number;
  private readonly onTime: GpsSensorOptions['onTime'];
  private emit: ((sample: Sample) => void) | undefined;
  private port: SerialPort | undefined;
  private stopped = false;
  /** Why the port is closed; undefined while it is open. */
  private downBecause: string | undefined = 'opening';
  private reopenTimer: NodeJS.Timeout | undefined;
  private cycleTimer: NodeJS.Timeout | undefined;
  private rejected = 0;
  private ignored = 0;
  private lastProblem: { at: number; what: string } | undefined;
  private lastSampleAt: number | undefined;
  // Per open port: a replugged receiver starts over (and its clock may be unset again).
  private openedAt = 0;
  private pending = '';
  private cycle = new FixCycle();
  private lastValidAt: number | undefined;
  private lastInputAt: number | undefined;
  private lastFix: GpsFix | undefined;
  private lastFixAt: number | undefined;
  private offered: Offered | undefined;
  /** The last fix's position, to derive the speed of the next for receivers that send none. */
  private previous: (Position & { timeMs: number }) | undefined;
  /** What the last fix lacked (LACKS), for health. */
  private lacks: string[] = [];
  /** Receivers leave the course empty when standing still; the truck still points the same way. */
  private heading = 0;

  constructor(opts: GpsSensorOptions) {
    this.name = opts.name ?? 'gps0';
    this.path = opts.path;
    this.baudRate = opts.baudRate ?? 9600;
    this.staleAfterMs = opts.staleAfterMs ?? 3000;
    this.reopenMs = opts.reopenMs ?? 1000;
    this.onTime = opts.onTime;
    for (const [k, v] of Object.entries({ baudRate: this.baudRate, staleAfterMs: this.staleAfterMs, reopenMs: this.reopenMs })) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`${this.name}: ${k} must be a positive number, got ${v}`);
    }
  }

  /** Resolves after the first attempt to open the port, whether or not it opened. */
  async start(emit: (sample: Sample) => void): Promise<void> {
    if (this.emit) throw new Error(`${this.name} is already started`);
    this.emit = emit;
    await this.open();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.reopenTimer);
    this.endCycle();
    const port = this.port;
    this.port = undefined;
    this.downBecause = 'stopped';
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  health(): SensorHealth {
    const h: SensorHealth = { state: 'ok', rejected: this.rejected, ignored: this.ignored };
    if (this.lastSampleAt !== undefined) h.lastSampleAt = this.lastSampleAt;
    if (!this.emit) return { ...h, state: 'down', detail: 'not started' };
    if (this.downBecause !== undefined) {
      const retry = this.stopped ? '' : `; retrying every ${this.reopenMs} ms`;
      return { ...h, state: 'down', detail: this.downBecause + retry };
    }
    const now = Date.now();
    const recent = (at: number | undefined) => at !== undefined && now - at <= this.staleAfterMs;
    const problem = recent(this.lastProblem?.at) ? this.lastProblem!.what : undefined;
    const quietMs = now - (this.lastValidAt ?? this.openedAt);
    if (quietMs > this.staleAfterMs) {
      const heard = recent(this.lastInputAt);
      const why = heard
        ? `only unreadable input for ${seconds(quietMs)} (wrong baud rate?)`
        : `no data from ${this.path} for ${seconds(quietMs)}`;
      return { ...h, state: 'degraded', detail: join(why, this.lastProblem?.what) };
    }
    if (this.lastValidAt === undefined) return withDetail({ ...h, state: 'starting' }, problem);
    // Receivers differ in how they say they lost the fix (a flag, zeros, blank fields, or nothing): no fix lately is what counts.
    const fixed = this.lastFix !== 'none' && recent(this.lastFixAt);
    const offered = recent(this.offered?.at) ? this.offered : undefined;
    const notes = fixed ? [...this.lacks] : ['no satellite fix'];
    if (offered?.weeks) notes.push(`receiver dates ${offered.weeks} weeks behind, corrected (GPS week rollover)`);
    if (offered?.refused !== undefined) {
      return withDetail(
        { ...h, state: 'degraded' },
        `GPS time refused: ${offered.refused}; samples take the system clock`,
        ...notes,
        problem,
      );
    }
    return withDetail(h, ...notes, problem);
  }

  private open(): Promise<void> {
    return new Promise((resolve) => {
      let port: SerialPort;
      try {
        port = new SerialPort({ path: this.path, baudRate: this.baudRate, dataBits: 8, parity: 'none', stopBits: 1, autoOpen: false });
      } catch (err) {
        this.lost(`cannot open ${this.path}: ${(err as Error).message}`);
        return resolve();
      }
      // Bytes still in flight after stop() or a disconnect belong to no one.
      port.on('data', (chunk: Buffer) => {
        if (this.port === port) this.safely(() => this.onData(chunk));
      });
      // Read failures arrive as 'close' with a DisconnectedError; this keeps anything else from crashing us.
      port.on('error', (err: Error) => this.note(`serial port error: ${err.message}`));
      port.on('close', (err: Error | null) => {
        if (this.port !== port) return;
        this.port = undefined;
        this.lost(`${this.path} disconnected${err ? `: ${err.message}` : ''}`);
      });
      port.open((err) => {
        if (err) this.lost(`cannot open ${this.path}: ${err.message}`);
        else if (this.stopped) port.close();
        else this.opened(port);
        resolve();
      });
    });
  }

  private opened(port: SerialPort): void {
    this.port = port;
    this.downBecause = undefined;
    this.openedAt = Date.now();
    this.pending = '';
    this.cycle = new FixCycle();
    this.lastValidAt = this.lastInputAt = this.lastFix = this.lastFixAt = this.offered = this.previous = undefined;
    this.lacks = [];
  }

  private lost(why: string): void {
    this.endCycle();
    this.downBecause = why;
    if (this.stopped) return;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = setTimeout(() => void this.open(), this.reopenMs);
    this.reopenTimer.unref();
  }

  private onData(chunk: Buffer): void {
    this.lastInputAt = Date.now();
    // latin1 maps each byte to one character, so line noise stays the length it was.
    const lines = (this.pending + chunk.toString('latin1')).split('\n');
    this.pending = lines.pop()!.slice(-MAX_PENDING);
    for (const line of lines) this.onLine(line);
  }

  private onLine(line: string): void {
    const r = parseLine(line);
    if (r === undefined) return;
    if (!r.ok && r.reason !== 'unknown') {
      this.rejected++;
      this.note(`refused ${r.reason}: ${r.detail}`);
      return;
    }
    // GSV, TXT, $PMTK... are sound NMEA we do not read: the receiver is talking at the right rate.
    this.lastValidAt = Date.now();
    if (!r.ok || r.placeholder !== undefined) this.ignored++;
    if (!r.ok) return;
    const done = this.cycle.push(r.sentence);
    if (done) this.report(done);
    this.offerTime();
    clearTimeout(this.cycleTimer);
    this.cycleTimer = setTimeout(() => this.safely(() => this.endCycle()), CYCLE_GAP_MS);
    this.cycleTimer.unref();
  }

  /**
   * Offers the current cycle's GPS time to the agent as soon as it is known (its burst is still
   * arriving, so the time is as fresh as it gets), once per cycle, the week rollover corrected.
   */
  private offerTime(): void {
    const raw = this.cycle.validTime();
    if (raw === undefined || raw === this.offered?.rawUtcMs) return;
    const { utcMs, weeks } = correctWeekRollover(raw);
    const offered: Offered = { rawUtcMs: raw, utcMs, weeks, at: Date.now() };
    this.offered = offered;
    this.safely(() => {
      const refused = this.onTime?.(utcMs);
      if (refused !== undefined) offered.refused = refused;
    });
  }

  private endCycle(): void {
    clearTimeout(this.cycleTimer);
    const done = this.cycle.flush();
    if (done) this.report(done);
  }

  private report(f: Fix): void {
    this.lastFix = f.fix;
    // No position without a fix: receivers zero-fill the fields (0°, 0°) or repeat the last one.
    if (f.fix === 'none' || f.lat === undefined || f.lon === undefined) return;
    this.lastFixAt = Date.now();
    const position = { lat: f.lat, lon: f.lon };
    const derived = f.speedKmh === undefined ? this.derivedMotion(position, f.timeMs) : undefined;
    this.previous = f.timeMs === undefined ? undefined : { ...position, timeMs: f.timeMs };
    this.lacks = [...(f.speedKmh === undefined ? [LACKS.speed] : []), ...(f.utcMs === undefined ? [LACKS.date] : [])];
    const speedKmh = f.speedKmh ?? derived?.speedKmh;
    const courseDeg = f.courseDeg ?? derived?.courseDeg;
    if (courseDeg !== undefined) this.heading = courseDeg;
    // The first fix of a receiver that sends no speed: nothing to derive it from yet.
    if (speedKmh === undefined) return;
    if (speedKmh > sensorSpec('gps').range[1]) {
      // A derived speed that high is a jump in position, not the receiver's claim: nothing to count.
      if (derived) return;
      this.rejected++;
      this.note(`refused a fix: speed ${speedKmh.toFixed(1)} km/h is beyond any truck`);
      return;
    }
    // GPS time only where the agent took it for this very cycle.
    const o = this.offered;
    const gpsTime = o !== undefined && o.refused === undefined && f.utcMs === o.rawUtcMs ? o.utcMs : undefined;
    const sample: Sample = {
      ts: gpsTime ?? Date.now(),
      clock: gpsTime !== undefined ? 'synced' : 'unsynced',
      sensor: 'gps',
      value: quantize(speedKmh),
      // A speed from two positions is an average over a second and carries their jitter: never better than uncertain.
      quality: derived && f.fix === '3d' ? 'uncertain' : QUALITY[f.fix],
      // The heading rounded to the wire's tenth of a degree here, so 359.97 cannot become 360.0 there.
      position: { ...position, heading: (Math.round(this.heading * 10) / 10) % 360, fix: f.fix },
    };
    this.lastSampleAt = Date.now();
    this.safely(() => this.emit?.(sample));
  }

  /** Speed and course from the last fix's position, for receivers that send no speed. */
  private derivedMotion(to: Position, timeMs: number | undefined): { speedKmh: number; courseDeg?: number } | undefined {
    const from = this.previous;
    if (from === undefined || timeMs === undefined) return undefined;
    const dtMs = (timeMs - from.timeMs + DAY_MS) % DAY_MS;
    return dtMs > 0 && dtMs <= MAX_DERIVE_GAP_MS ? motionBetween(from, to, dtMs) : undefined;
  }

  private note(what: string): void {
    this.lastProblem = { at: Date.now(), what };
  }

  /** Serial and timer callbacks must never throw: trouble goes to health instead. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.note(`internal error: ${(err as Error).message}`);
    }
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function join(...parts: (string | undefined)[]): string {
  return parts.filter(Boolean).join('; ');
}

function withDetail(h: SensorHealth, ...parts: (string | undefined)[]): SensorHealth {
  const detail = join(...parts);
  return detail ? { ...h, detail } : h;
}
