import { SerialPort } from 'serialport';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import { quantize } from '../../shared/contract/codec.js';
import { sensorSpec, type GpsFix, type Quality, type Sample } from '../../shared/contract/reading.js';
import { MIN_TS } from '../../shared/contract/validate.js';
import { FixCycle, type Fix } from './fix-cycle.js';
import { MAX_SENTENCE, parseLine } from './nmea.js';

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
   * Called with GPS UTC (ms) as each valid RMC arrives, so the agent can discipline its clock.
   * It lags true UTC by the serial transfer of the burst so far: tens of ms at 9600 baud.
   */
  onTime?: (utcMs: number) => void;
}

/** Sentences of one fix arrive back to back; this much quiet means the burst is over. */
const CYCLE_GAP_MS = 400;
/** An unterminated line is cut to its tail, which is where a sentence would start. */
const MAX_PENDING = 2 * MAX_SENTENCE;

const QUALITY: Record<GpsFix, Quality> = { '3d': 'good', '2d': 'uncertain', none: 'bad' };

/**
 * An NMEA 0183 receiver on a serial port: one `gps` sample per receiver cycle with a position.
 * Cycles without one (no fix yet: empty lat/lon) give no sample; they show in health instead.
 */
export class GpsSensor implements Sensor {
  readonly name: string;
  private readonly path: string;
  private readonly baudRate: number;
  private readonly staleAfterMs: number;
  private readonly reopenMs: number;
  private readonly onTime: ((utcMs: number) => void) | undefined;
  private emit: ((sample: Sample) => void) | undefined;
  private port: SerialPort | undefined;
  private stopped = false;
  /** Why the port is closed; undefined while it is open. */
  private downBecause: string | undefined = 'opening';
  private reopenTimer: NodeJS.Timeout | undefined;
  private cycleTimer: NodeJS.Timeout | undefined;
  private rejected = 0;
  private lastProblem: { at: number; what: string } | undefined;
  private lastSampleAt: number | undefined;
  // Per open port: a replugged receiver starts over (and its clock may be unset again).
  private openedAt = 0;
  private pending = '';
  private cycle = new FixCycle();
  private lastValidAt: number | undefined;
  private lastInputAt: number | undefined;
  private lastFix: GpsFix | undefined;
  private timeTrusted = false;
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
    const h: SensorHealth = { state: 'ok', rejected: this.rejected };
    if (this.lastSampleAt !== undefined) h.lastSampleAt = this.lastSampleAt;
    if (!this.emit) return { ...h, state: 'down', detail: 'not started' };
    if (this.downBecause !== undefined) {
      const retry = this.stopped ? '' : `; retrying every ${this.reopenMs} ms`;
      return { ...h, state: 'down', detail: this.downBecause + retry };
    }
    const now = Date.now();
    const problem = this.lastProblem && now - this.lastProblem.at <= this.staleAfterMs ? this.lastProblem.what : undefined;
    const quietMs = now - (this.lastValidAt ?? this.openedAt);
    if (quietMs > this.staleAfterMs) {
      const heard = this.lastInputAt !== undefined && now - this.lastInputAt <= this.staleAfterMs;
      const why = heard
        ? `only unreadable input for ${seconds(quietMs)} (wrong baud rate?)`
        : `no data from ${this.path} for ${seconds(quietMs)}`;
      return { ...h, state: 'degraded', detail: join(why, this.lastProblem?.what) };
    }
    if (this.lastValidAt === undefined) return withDetail({ ...h, state: 'starting' }, problem);
    return withDetail(h, this.lastFix === 'none' ? 'no satellite fix' : undefined, problem);
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
    this.lastValidAt = this.lastInputAt = this.lastFix = undefined;
    this.timeTrusted = false;
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
    if (!r.ok) return;
    const s = r.sentence;
    if (s.type === 'RMC' && s.valid && s.dateMs !== undefined && s.timeMs !== undefined && s.dateMs + s.timeMs >= MIN_TS) {
      this.timeTrusted = true;
      this.safely(() => this.onTime?.(s.dateMs! + s.timeMs!));
    }
    const done = this.cycle.push(s);
    if (done) this.report(done);
    clearTimeout(this.cycleTimer);
    this.cycleTimer = setTimeout(() => this.safely(() => this.endCycle()), CYCLE_GAP_MS);
    this.cycleTimer.unref();
  }

  private endCycle(): void {
    clearTimeout(this.cycleTimer);
    const done = this.cycle.flush();
    if (done) this.report(done);
  }

  private report(f: Fix): void {
    this.lastFix = f.fix;
    if (f.courseDeg !== undefined) this.heading = f.courseDeg;
    // A sample needs a position and a speed; a cycle that lost both RMC and VTG is skipped.
    if (f.lat === undefined || f.lon === undefined || f.speedKmh === undefined) return;
    if (f.speedKmh > sensorSpec('gps').range[1]) {
      this.rejected++;
      this.note(`refused a fix: speed ${f.speedKmh.toFixed(1)} km/h is beyond any truck`);
      return;
    }
    // Before this port's first valid fix the receiver's clock may be unset (1980, or a week rollover).
    const gpsTime = this.timeTrusted && f.utcMs !== undefined && f.utcMs >= MIN_TS;
    const sample: Sample = {
      ts: gpsTime ? f.utcMs! : Date.now(),
      clock: gpsTime ? 'synced' : 'unsynced',
      sensor: 'gps',
      value: quantize(f.speedKmh),
      quality: QUALITY[f.fix],
      // The heading rounded to the wire's tenth of a degree here, so 359.97 cannot become 360.0 there.
      position: { lat: f.lat, lon: f.lon, heading: (Math.round(this.heading * 10) / 10) % 360, fix: f.fix },
    };
    this.lastSampleAt = Date.now();
    this.safely(() => this.emit?.(sample));
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
