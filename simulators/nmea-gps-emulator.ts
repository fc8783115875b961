import { SerialPort } from 'serialport';
import { checksum, hex2, KMH_PER_KNOT } from '../hardware/gps/nmea.js';
import type { TruckModel } from './truck-model.js';

/** The sentences a receiver can be set to send for each fix. */
export type FixSentence = 'GGA' | 'RMC' | 'VTG' | 'GSA' | 'GNS' | 'GLL' | 'ZDA';

/**
 * How a receiver reports, modelled on real ones (gpsd's regression captures and receivers'
 * manuals): which sentences, in what order, what it sends while it has no fix, and its date.
 */
export interface ReceiverProfile {
  /** GN (multi-constellation) or GP (GPS only). */
  talker: 'GN' | 'GP';
  /** What each burst holds, in order. */
  sentences: readonly FixSentence[];
  /**
   * Without a fix: `empty` fields (u-blox, SiRF); positions `zero-filled` to
   * `0000.0000,N,00000.0000,E` and a `000000` date before it knows one (MediaTek); or
   * `blank` fields, the time included (phone modems such as the Droid 4's).
   */
  noFix: 'empty' | 'zero-filled' | 'blank';
  /** How far its date runs behind UTC, in weeks: 1024 for firmware past its GPS week rollover. */
  weeksBehind: number;
}

export const RECEIVER_PROFILES = {
  /** Most receivers as shipped (u-blox NEO-M8, Quectel L76). */
  standard: { talker: 'GN', sentences: ['GGA', 'RMC', 'VTG', 'GSA'], noFix: 'empty', weeksBehind: 0 },
  /** A multi-GNSS module set to the NMEA 4 position sentence alone: position and time, no speed, no date. */
  'gns-only': { talker: 'GN', sentences: ['GNS'], noFix: 'empty', weeksBehind: 0 },
  /** Timing receivers: the date in ZDA, no speed at all. */
  'gga-gsa-zda': { talker: 'GP', sentences: ['GGA', 'GSA', 'ZDA'], noFix: 'empty', weeksBehind: 0 },
  /** As the HP 58534A in gpsd's captures: the date in ZDA, the speed in VTG, no RMC. */
  'gga-vtg-zda': { talker: 'GP', sentences: ['GGA', 'ZDA', 'VTG'], noFix: 'empty', weeksBehind: 0 },
  /** MediaTek chips: no-fix sentences with zeros for a position. */
  'zero-filled': { talker: 'GP', sentences: ['GGA', 'RMC', 'VTG', 'GSA'], noFix: 'zero-filled', weeksBehind: 0 },
  /** Blanks every field, the time too, as soon as the fix is lost. */
  'blank-on-loss': { talker: 'GP', sentences: ['GGA', 'GNS', 'RMC', 'VTG', 'GSA'], noFix: 'blank', weeksBehind: 0 },
  /** Firmware past its GPS week rollover: the date 19.6 years back, everything else right. */
  'week-rollover': { talker: 'GN', sentences: ['GGA', 'RMC', 'VTG', 'GSA'], noFix: 'empty', weeksBehind: 1024 },
} as const satisfies Record<string, ReceiverProfile>;

export type ReceiverProfileName = keyof typeof RECEIVER_PROFILES;

export interface NmeaGpsEmulatorOptions {
  /** The device end of the cable, e.g. one side of a socat pty pair. */
  path: string;
  model: TruckModel;
  baudRate?: number;
  profile?: ReceiverProfileName;
  /** Overrides the profile's talker. */
  talker?: 'GN' | 'GP';
  /** How long after power-on the receiver searches before its first fix. */
  noFixMs?: number;
  /** Fixes per second; vehicle receivers are often set to 5 or 10. */
  rateHz?: number;
  /** Also sends long proprietary sentences each second ($PUBX, $PGLOR, $PMTK), as u-blox, Broadcom and MediaTek receivers do. */
  proprietary?: boolean;
  /** How far the receiver's clock is off while it claims a fix, besides the profile's weeks: a receiver that reports a stale time. */
  clockErrorMs?: number;
}

/**
 * What a receiver says at power-on: the tail of a sentence cut off mid-line (the reader opened
 * in the middle of it), plain text, and MTK start-up sentences that are valid but not ours.
 */
const BOOT = ['0.00,N,0.00,K,N*32', 'GPS emulator v1.0 boot', 'ROM CORE 1.6', '$PMTK011,MTKGPS*08', '$PMTK010,001*2E'];
/** Before its first fix a receiver's clock runs from a default: 1980 for most, none at all for MediaTek (date `000000`). */
const RTC_EPOCH = { empty: Date.UTC(1980, 0, 6), 'zero-filled': undefined, blank: undefined } as const;
const WEEK_MS = 7 * 86_400_000;
const ALTITUDE_M = '250.0';

type Fields = string[];

/** The receiver's clock while it sends a burst: its time, and its date unless it has none. */
interface ReceiverClock {
  at: Date;
  dated: boolean;
}

/**
 * A GPS receiver on a serial line, driven by a TruckModel: boot noise, a no-fix period, then a
 * 3D fix along the model's route, stamped with this machine's clock as GPS UTC, in the
 * sentences and manners of one of the RECEIVER_PROFILES.
 */
export class NmeaGpsEmulator {
  private readonly profile: ReceiverProfile;
  private readonly talker: string;
  private readonly periodMs: number;
  private readonly port: SerialPort;
  private timer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  private corrupt = 0;
  private split: { pauseMs: number; done: (sentence: string) => void } | undefined;
  private silentUntil = 0;
  private noFixUntil = 0;
  /** Until its first fix sets it, the receiver's clock runs from its default since power-on (undefined epoch: no date). */
  private rtc: { epochMs: number | undefined; since: number } | undefined;
  private lastProprietary = 0;
  private lastFix: number | undefined;

  constructor(private readonly opts: NmeaGpsEmulatorOptions) {
    this.profile = RECEIVER_PROFILES[opts.profile ?? 'standard'];
    this.talker = opts.talker ?? this.profile.talker;
    this.periodMs = 1000 / (opts.rateHz ?? 1);
    this.port = new SerialPort({ path: opts.path, baudRate: opts.baudRate ?? 9600, autoOpen: false });
    // A pulled cable shows up as write errors; the emulator just stops talking.
    this.port.on('error', () => undefined);
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
    this.boot(this.opts.noFixMs ?? 3000, RTC_EPOCH[this.profile.noFix]);
    this.schedule();
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // Not waiting for queued writes: after a pulled cable they would never finish.
    if (this.port.isOpen) await new Promise<void>((resolve) => this.port.close(() => resolve()));
  }

  /** When the last burst with a fix was due (this machine's clock, ms), for tests to find its sample. */
  get lastFixTs(): number | undefined {
    return this.lastFix;
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

  /** No fix for `ms` (a tunnel, a parking garage); the receiver keeps its time meanwhile. */
  loseFix(ms: number): void {
    this.noFixUntil = Date.now() + ms;
  }

  /**
   * The receiver restarts (a brown-out, a watchdog): boot noise, then `noFixMs` without a fix
   * while its clock runs from `rtcDateMs` (default: its power-on default), whatever that is.
   */
  reset(noFixMs: number, rtcDateMs: number | undefined = RTC_EPOCH[this.profile.noFix]): void {
    this.boot(noFixMs, rtcDateMs);
  }

  private boot(noFixMs: number, rtcDateMs: number | undefined): void {
    const now = Date.now();
    this.noFixUntil = now + noFixMs;
    this.rtc = { epochMs: rtcDateMs, since: now };
    void this.send(BOOT.join('\r\n') + '\r\n');
  }

  /** On each multiple of the period, as receivers report. */
  private schedule(): void {
    this.timer = setTimeout(
      () => {
        const ts = Math.round(Date.now() / this.periodMs) * this.periodMs;
        if (ts >= this.silentUntil && this.port.isOpen) this.burst(ts);
        this.schedule();
      },
      this.periodMs - (Date.now() % this.periodMs),
    );
  }

  private burst(ts: number): void {
    const fixed = ts >= this.noFixUntil;
    // Its first fix sets the receiver's clock; after that it keeps time, fix or not.
    if (fixed) {
      this.rtc = undefined;
      this.lastFix = ts;
    }
    const clock = this.clockAt(ts);
    const sentences = this.profile.sentences.map((type) => (fixed ? this.fix(type, ts, clock) : this.noFix(type, clock)));
    if (this.opts.proprietary && ts - this.lastProprietary >= 1000) {
      this.lastProprietary = ts;
      sentences.push(...proprietary(this.opts.model, ts, clock));
    }
    for (const fields of sentences) this.sendSentence(fields[0]!.startsWith('P') ? fields.join(',') : `${this.talker}${fields.join(',')}`);
  }

  private clockAt(ts: number): ReceiverClock {
    if (this.rtc === undefined)
      return { at: new Date(ts - this.profile.weeksBehind * WEEK_MS + (this.opts.clockErrorMs ?? 0)), dated: true };
    return { at: new Date((this.rtc.epochMs ?? 0) + (ts - this.rtc.since)), dated: this.rtc.epochMs !== undefined };
  }

  private sendSentence(body: string): void {
    const sum = checksum(body) ^ (this.corrupt > 0 ? 0x5a : 0);
    if (this.corrupt > 0) this.corrupt--;
    const line = `$${body}*${hex2(sum)}\r\n`;
    const split = this.split;
    this.split = undefined;
    if (!split) {
      void this.send(line);
      return;
    }
    const half = Math.floor(line.length / 2);
    void this.send(line.slice(0, half));
    this.queue = this.queue.then(() => new Promise((r) => setTimeout(r, split.pauseMs)));
    void this.send(line.slice(half)).then(() => split.done(line.trimEnd()));
  }

  private fix(type: FixSentence, ts: number, clock: ReceiverClock): Fields {
    const s = this.opts.model.advance(ts);
    const time = hhmmss(clock.at);
    const [lat, ns] = coord(s.lat, 2, 'N', 'S');
    const [lon, ew] = coord(s.lon, 3, 'E', 'W');
    const knots = (s.speedKmh / KMH_PER_KNOT).toFixed(3);
    const course = s.heading.toFixed(2);
    switch (type) {
      case 'GGA':
        return ['GGA', time, lat, ns, lon, ew, '1', '09', '0.90', ALTITUDE_M, 'M', '47.0', 'M', '', ''];
      case 'RMC':
        return ['RMC', time, 'A', lat, ns, lon, ew, knots, course, ddmmyy(clock), '', '', 'A'];
      case 'VTG':
        return ['VTG', course, 'T', '', 'M', knots, 'N', s.speedKmh.toFixed(3), 'K', 'A'];
      case 'GSA':
        return ['GSA', 'A', '3', '02', '05', '07', '09', '13', '15', '20', '30', '', '', '', '', '1.60', '0.90', '1.30'];
      // GPS, GLONASS used, Galileo not; u-blox leaves the NMEA 4.1 navigational status at V ("not given").
      case 'GNS':
        return ['GNS', time, lat, ns, lon, ew, 'AAN', '09', '0.90', ALTITUDE_M, '47.0', '', '', 'V'];
      case 'GLL':
        return ['GLL', lat, ns, lon, ew, time, 'A', 'A'];
      case 'ZDA':
        return ['ZDA', time, ...zdaDate(clock), '00', '00'];
    }
  }

  private noFix(type: FixSentence, clock: ReceiverClock): Fields {
    const style = this.profile.noFix;
    const time = style === 'blank' ? '' : hhmmss(clock.at);
    const [lat, ns, lon, ew] = style === 'zero-filled' ? ['0000.0000', 'N', '00000.0000', 'E'] : ['', '', '', ''];
    const zero = style === 'zero-filled' ? '0.00' : '';
    switch (type) {
      case 'GGA':
        return style === 'blank'
          ? ['GGA', '', '', '', '', '', '0', '', '', '', '', '', '', '', '']
          : [
              'GGA',
              time,
              lat,
              ns,
              lon,
              ew,
              '0',
              '00',
              '99.99',
              style === 'zero-filled' ? '0.0' : '',
              style === 'zero-filled' ? 'M' : '',
              '',
              '',
              '',
              '',
            ];
      case 'RMC':
        return ['RMC', time, 'V', lat, ns, lon, ew, zero, zero, style === 'blank' ? '' : ddmmyy(clock), '', '', 'N'];
      case 'VTG':
        return ['VTG', zero, 'T', '', 'M', zero, 'N', zero, 'K', 'N'];
      case 'GSA':
        return ['GSA', 'A', '1', ...Array<string>(12).fill(''), ...(style === 'blank' ? ['', '', ''] : ['99.99', '99.99', '99.99'])];
      case 'GNS':
        return ['GNS', time, lat, ns, lon, ew, 'NNN', style === 'blank' ? '' : '00', style === 'blank' ? '' : '99.99', '', '', '', '', 'V'];
      case 'GLL':
        return ['GLL', lat, ns, lon, ew, time, 'V', 'N'];
      case 'ZDA':
        return ['ZDA', time, ...(style === 'blank' ? ['', '', ''] : zdaDate(clock)), '00', '00'];
    }
  }

  /** Writes go one after another, so a split sentence's halves are not interleaved with others. */
  private send(data: string | Buffer): Promise<void> {
    this.queue = this.queue.then(
      () => new Promise<void>((resolve) => (this.port.isOpen ? this.port.write(data, () => resolve()) : resolve())),
    );
    return this.queue;
  }
}

/**
 * u-blox's position sentence, a Broadcom satellite report and a MediaTek acknowledgement:
 * sound NMEA that no position reader uses, the first two longer than the standard's 82.
 */
function proprietary(model: TruckModel, ts: number, clock: ReceiverClock): Fields[] {
  const s = model.advance(ts);
  const [lat, ns] = coord(s.lat, 2, 'N', 'S');
  const [lon, ew] = coord(s.lon, 3, 'E', 'W');
  const sats = ['G01', 'G03', 'G08', 'G10', 'G11', 'G14', 'G17', 'G19', 'G22', 'G32', 'R02', 'R03', 'R12', 'E05'];
  return [
    [
      'PUBX',
      '00',
      hhmmss(clock.at),
      `${lat}0`,
      ns,
      `${lon}0`,
      ew,
      '546.589',
      'G3',
      '2.1',
      '2.0',
      s.speedKmh.toFixed(3),
      s.heading.toFixed(2),
      '0.007',
      '',
      '0.92',
      '1.19',
      '0.77',
      '9',
      '0',
      '0',
    ],
    ['PGLOR', '1', 'SAT', ...sats.flatMap((id, i) => [id, String(30 + ((i * 7) % 16)).padStart(3, '0'), '11'])],
    ['PMTK001', '604', '3'],
  ];
}

function hhmmss(d: Date): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const cs = Math.floor(d.getUTCMilliseconds() / 10);
  return `${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}.${two(cs)}`;
}

/** ddmmyy, or MediaTek's `000000` while the receiver has no date. */
function ddmmyy(c: ReceiverClock): string {
  const two = (n: number) => String(n).padStart(2, '0');
  return c.dated ? `${two(c.at.getUTCDate())}${two(c.at.getUTCMonth() + 1)}${two(c.at.getUTCFullYear() % 100)}` : '000000';
}

function zdaDate(c: ReceiverClock): string[] {
  const two = (n: number) => String(n).padStart(2, '0');
  return c.dated ? [two(c.at.getUTCDate()), two(c.at.getUTCMonth() + 1), String(c.at.getUTCFullYear())] : ['00', '00', '0000'];
}

/** Signed degrees to NMEA's (d)ddmm.mmmmm and a hemisphere, rounding without a 60.00000 minute. */
function coord(deg: number, degDigits: number, pos: string, neg: string): [string, string] {
  const units = Math.round(Math.abs(deg) * 60 * 1e5);
  const whole = Math.floor(units / 6e6);
  const minutes = ((units - whole * 6e6) / 1e5).toFixed(5).padStart(8, '0');
  return [`${String(whole).padStart(degDigits, '0')}${minutes}`, deg < 0 ? neg : pos];
}
