import { SerialPort } from 'serialport';
import { checksum, hex2, KMH_PER_KNOT } from '../hardware/gps/nmea.js';
import type { TruckModel } from './truck-model.js';

export interface NmeaGpsEmulatorOptions {
  /** The device end of the cable, e.g. one side of a socat pty pair. */
  path: string;
  model: TruckModel;
  baudRate?: number;
  /** GN (multi-constellation) or GP (GPS only), as receivers differ. */
  talker?: 'GN' | 'GP';
  /** How long after power-on the receiver searches before its first fix. */
  noFixMs?: number;
}

/**
 * What a receiver says at power-on: the tail of a sentence cut off mid-line (the reader opened
 * in the middle of it), plain text, and MTK start-up sentences that are valid but not ours.
 */
const BOOT = ['0.00,N,0.00,K,N*32', 'GPS emulator v1.0 boot', 'ROM CORE 1.6', '$PMTK011,MTKGPS*08', '$PMTK010,001*2E'];
/** Before its first fix a receiver's clock runs from this default, as MTK chips' do. */
const RTC_EPOCH = Date.UTC(1980, 0, 6);
const ALTITUDE_M = '250.0';

/**
 * A GPS receiver on a serial line, driven by a TruckModel: boot noise, a no-fix period, then a
 * 3D fix along the model's route at 1 Hz, stamped with this machine's clock as GPS UTC.
 */
export class NmeaGpsEmulator {
  private readonly talker: string;
  private readonly noFixMs: number;
  private readonly port: SerialPort;
  private bootAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private corrupt = 0;
  private split: { pauseMs: number; done: (sentence: string) => void } | undefined;
  private silentUntil = 0;

  constructor(private readonly opts: NmeaGpsEmulatorOptions) {
    this.talker = opts.talker ?? 'GN';
    this.noFixMs = opts.noFixMs ?? 3000;
    this.port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 9600, autoOpen: false });
    // A pulled cable shows up as write errors; the emulator just stops talking.
    this.port.on('error', () => undefined);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
    this.bootAt = Date.now();
    void this.send(BOOT.join('\r\n') + '\r\n');
    this.schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Not waiting for queued writes: after a pulled cable they would never finish.
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  /** The next `n` sentences go out with a wrong checksum. */
  corruptNext(n: number): void {
    this.corrupt += n;
  }

  /** Bytes as they are, e.g. what a receiver at another baud rate looks like: random garbage. */
  writeRaw(bytes: Buffer): Promise<void> {
    return this.send(bytes);
  }

  /** The next sentence goes out in two writes `pauseMs` apart; resolves with it once sent. */
  splitNext(pauseMs = 150): Promise<string> {
    return new Promise((done) => (this.split = { pauseMs, done }));
  }

  /** No output for `ms`, as a receiver that hangs or loses power. */
  silence(ms: number): void {
    this.silentUntil = Date.now() + ms;
  }

  /** On each whole second, as receivers report. */
  private schedule(): void {
    this.timer = setTimeout(() => {
      const ts = Math.round(Date.now() / 1000) * 1000;
      if (ts >= this.silentUntil && this.port.isOpen) this.cycle(ts);
      this.schedule();
    }, 1000 - (Date.now() % 1000));
  }

  private cycle(ts: number): void {
    const sentences = ts - this.bootAt < this.noFixMs ? this.searching(ts) : this.fix(ts);
    for (const fields of sentences) {
      const body = `${this.talker}${fields.join(',')}`;
      const sum = checksum(body) ^ (this.corrupt > 0 ? 0x5a : 0);
      if (this.corrupt > 0) this.corrupt--;
      const line = `$${body}*${hex2(sum)}\r\n`;
      const split = this.split;
      this.split = undefined;
      if (!split) {
        void this.send(line);
        continue;
      }
      const half = Math.floor(line.length / 2);
      void this.send(line.slice(0, half));
      this.queue = this.queue.then(() => new Promise((r) => setTimeout(r, split.pauseMs)));
      void this.send(line.slice(half)).then(() => split.done(line.trimEnd()));
    }
  }

  /** No fix: empty position, and the time and date of an unset receiver clock. */
  private searching(ts: number): string[][] {
    const rtc = new Date(RTC_EPOCH + (ts - this.bootAt));
    const time = hhmmss(rtc);
    return [
      ['GGA', time, '', '', '', '', '0', '00', '99.99', '', '', '', '', '', ''],
      ['RMC', time, 'V', '', '', '', '', '', '', ddmmyy(rtc), '', '', 'N'],
      ['VTG', '', 'T', '', 'M', '', 'N', '', 'K', 'N'],
      ['GSA', 'A', '1', ...Array<string>(12).fill(''), '99.99', '99.99', '99.99'],
    ];
  }

  private fix(ts: number): string[][] {
    const s = this.opts.model.advance(ts);
    const at = new Date(ts);
    const time = hhmmss(at);
    const [lat, ns] = coord(s.lat, 2, 'N', 'S');
    const [lon, ew] = coord(s.lon, 3, 'E', 'W');
    const knots = (s.speedKmh / KMH_PER_KNOT).toFixed(3);
    const course = s.heading.toFixed(2);
    return [
      ['GGA', time, lat, ns, lon, ew, '1', '09', '0.90', ALTITUDE_M, 'M', '47.0', 'M', '', ''],
      ['RMC', time, 'A', lat, ns, lon, ew, knots, course, ddmmyy(at), '', '', 'A'],
      ['VTG', course, 'T', '', 'M', knots, 'N', s.speedKmh.toFixed(3), 'K', 'A'],
      ['GSA', 'A', '3', '02', '05', '07', '09', '13', '15', '20', '30', '', '', '', '', '1.60', '0.90', '1.30'],
    ];
  }

  /** Writes go one after another, so a split sentence's halves are not interleaved with others. */
  private send(data: string | Buffer): Promise<void> {
    this.queue = this.queue.then(
      () => new Promise<void>((resolve) => (this.port.isOpen ? this.port.write(data, () => resolve()) : resolve())),
    );
    return this.queue;
  }
}

function hhmmss(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}.00`;
}

function ddmmyy(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getUTCDate())}${two(d.getUTCMonth() + 1)}${two(d.getUTCFullYear() % 100)}`;
}

/** Signed degrees to NMEA's (d)ddmm.mmmmm and a hemisphere, rounding without a 60.00000 minute. */
function coord(deg: number, degDigits: number, pos: string, neg: string): [string, string] {
  const units = Math.round(Math.abs(deg) * 60 * 1e5);
  const whole = Math.floor(units / 6e6);
  const minutes = ((units - whole * 6e6) / 1e5).toFixed(5).padStart(8, '0');
  return [`${String(whole).padStart(degDigits, '0')}${minutes}`, deg < 0 ? neg : pos];
}
