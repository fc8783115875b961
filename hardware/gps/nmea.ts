import type { GpsFix } from '../../shared/contract/reading.js';

/**
 * A small NMEA 0183 reader for the sentences a position, a speed and a date come in: GGA, RMC,
 * GNS, GLL, VTG, GSA, ZDA, from any talker. It returns a refusal instead of throwing, for any
 * input, and nothing from a sentence is used unless its checksum matches (the npm `gps` parser
 * updates its state first).
 */

export interface Gga {
  type: 'GGA';
  talker: string;
  /** UTC time of day, ms since midnight. */
  timeMs?: number;
  lat?: number;
  lon?: number;
  /** 0 no fix, 1 GPS, 2 DGPS, 4/5 RTK, 6 dead reckoning ... */
  quality: number;
  altitudeM?: number;
}

export interface Rmc {
  type: 'RMC';
  talker: string;
  timeMs?: number;
  /** Status A and (NMEA 2.3+) a mode other than N. */
  valid: boolean;
  lat?: number;
  lon?: number;
  speedKmh?: number;
  /** Course over ground, degrees true in [0, 360). */
  courseDeg?: number;
  /** UTC midnight of the date field, ms since the epoch. */
  dateMs?: number;
}

/** NMEA 4's position sentence for multi-constellation receivers (some send it instead of GGA and RMC). */
export interface Gns {
  type: 'GNS';
  talker: string;
  timeMs?: number;
  /** A mode other than N for at least one constellation. */
  valid: boolean;
  lat?: number;
  lon?: number;
  altitudeM?: number;
}

/** Position and time of day, no date, no speed. */
export interface Gll {
  type: 'GLL';
  talker: string;
  timeMs?: number;
  /** Status A and (NMEA 2.3+) a mode other than N. */
  valid: boolean;
  lat?: number;
  lon?: number;
}

/** Time and full date: how receivers without RMC give the date. */
export interface Zda {
  type: 'ZDA';
  talker: string;
  timeMs?: number;
  /** UTC midnight of the date, ms since the epoch. */
  dateMs?: number;
}

export interface Vtg {
  type: 'VTG';
  talker: string;
  courseDeg?: number;
  speedKmh?: number;
}

export interface Gsa {
  type: 'GSA';
  talker: string;
  fix: GpsFix;
}

export type NmeaSentence = Gga | Rmc | Gns | Gll | Vtg | Gsa | Zda;

/**
 * `checksum`: missing or wrong `*hh`; `malformed`: a sentence we read whose fields are not what
 * NMEA says, or control characters; `unknown`: sound NMEA we do not read (GSV, TXT,
 * proprietary `$P...` of any length), which is no error.
 */
export type Refusal = 'checksum' | 'unknown' | 'malformed';

/**
 * `placeholder` names a field a receiver filled with a stand-in for "not known yet" (MediaTek's
 * date `000000`): read as empty, no error.
 */
export type ParseResult = { ok: true; sentence: NmeaSentence; placeholder?: string } | { ok: false; reason: Refusal; detail: string };

/** The standard says 82 with `$` and CRLF; real receivers overrun it a little (proprietary ones a lot). */
export const MAX_SENTENCE = 120;
export const KMH_PER_KNOT = 1.852;

/** Thrown only inside this module, for the field that makes a sentence malformed. */
class FieldError extends Error {}

export function parseNmea(line: string): ParseResult {
  if (!line.startsWith('$')) return refuse('malformed', 'does not start with $');
  const star = line.lastIndexOf('*');
  if (star < 0) return refuse('checksum', 'no *hh checksum');
  const given = line.slice(star + 1);
  if (!/^[0-9A-Fa-f]{2}$/.test(given)) return refuse('checksum', `checksum ${show(given)} is not two hex digits`);
  const body = line.slice(1, star);
  const sum = checksum(body);
  if (sum !== parseInt(given, 16)) {
    return refuse('checksum', `checksum ${given.toUpperCase()} does not match ${hex2(sum)}`);
  }
  if (!/^[\x20-\x7e]*$/.test(body)) return refuse('malformed', 'contains non-printable characters');
  const fields = body.split(',');
  const address = fields[0]!;
  const read = READERS.get(address.slice(2));
  // Proprietary sentences ($PUBX, $PGLOR, $PMTK...) run long; with a good checksum they are sound, just not ours.
  if (!/^[A-Z]{2}[A-Z]{3}$/.test(address) || address.startsWith('P') || read === undefined) {
    return refuse('unknown', `${show(address)} is not a sentence this reader uses`);
  }
  if (line.length > MAX_SENTENCE) return refuse('malformed', `longer than ${MAX_SENTENCE} characters`);
  const placeholders: string[] = [];
  try {
    const sentence = read(address.slice(0, 2), fields, placeholders);
    return placeholders.length > 0 ? { ok: true, sentence, placeholder: `${address}: ${placeholders.join(', ')}` } : { ok: true, sentence };
  } catch (err) {
    if (err instanceof FieldError) return refuse('malformed', `${address}: ${err.message}`);
    throw err;
  }
}

type Reader = (talker: string, fields: string[], placeholders: string[]) => NmeaSentence;

const READERS = new Map<string, Reader>([
  ['GGA', gga],
  ['RMC', rmc],
  ['GNS', gns],
  ['GLL', gll],
  ['VTG', vtg],
  ['GSA', gsa],
  ['ZDA', zda],
]);

/** XOR of the characters between `$` and `*`. */
export function checksum(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) sum ^= body.charCodeAt(i) & 0xff;
  return sum;
}

export function hex2(n: number): string {
  return n.toString(16).toUpperCase().padStart(2, '0');
}

function gga(talker: string, f: string[]): Gga {
  need(f, 10);
  const quality = int(f[6]!, 'quality', 0, 9);
  const s: Gga = { type: 'GGA', talker, quality: quality ?? 0 };
  assign(s, 'timeMs', time(f[1]!));
  assign(s, 'lat', coord(f[2]!, f[3]!, 'lat'));
  assign(s, 'lon', coord(f[4]!, f[5]!, 'lon'));
  assign(s, 'altitudeM', num(f[9]!, 'altitude', -20_000, 1e6));
  return s;
}

function rmc(talker: string, f: string[], placeholders: string[]): Rmc {
  need(f, 10);
  const status = f[2]!;
  if (status !== 'A' && status !== 'V') throw new FieldError(`status ${show(status)} is not A or V`);
  // NMEA 2.3 appends a mode; N says "data not valid" even when a receiver leaves status A.
  const s: Rmc = { type: 'RMC', talker, valid: status === 'A' && f[12] !== 'N' };
  assign(s, 'timeMs', time(f[1]!));
  assign(s, 'lat', coord(f[3]!, f[4]!, 'lat'));
  assign(s, 'lon', coord(f[5]!, f[6]!, 'lon'));
  const knots = num(f[7]!, 'speed', 0, 1e5);
  if (knots !== undefined) s.speedKmh = knots * KMH_PER_KNOT;
  assign(s, 'courseDeg', course(f[8]!));
  // MediaTek chips send 000000 until they know the date.
  if (f[9] === '000000') placeholders.push('date "000000"');
  else assign(s, 'dateMs', date(f[9]!));
  return s;
}

function gns(talker: string, f: string[]): Gns {
  need(f, 10);
  // One letter per constellation (GPS, GLONASS, Galileo, BeiDou ...): N no fix, A, D, P, R, F, E, M, S a fix of some kind.
  const mode = f[6]!;
  if (!/^[NADPRFEMS]{1,8}$/.test(mode))
    throw new FieldError(`mode ${show(mode)} is not one of N, A, D, P, R, F, E, M, S per constellation`);
  // The NMEA 4.1 navigational status (field 13) is not read: u-blox sends V there for "not given".
  const s: Gns = { type: 'GNS', talker, valid: /[^N]/.test(mode) };
  assign(s, 'timeMs', time(f[1]!));
  assign(s, 'lat', coord(f[2]!, f[3]!, 'lat'));
  assign(s, 'lon', coord(f[4]!, f[5]!, 'lon'));
  assign(s, 'altitudeM', num(f[9]!, 'altitude', -20_000, 1e6));
  return s;
}

function gll(talker: string, f: string[]): Gll {
  need(f, 7);
  const status = f[6]!;
  if (status !== 'A' && status !== 'V') throw new FieldError(`status ${show(status)} is not A or V`);
  const s: Gll = { type: 'GLL', talker, valid: status === 'A' && f[7] !== 'N' };
  assign(s, 'lat', coord(f[1]!, f[2]!, 'lat'));
  assign(s, 'lon', coord(f[3]!, f[4]!, 'lon'));
  assign(s, 'timeMs', time(f[5]!));
  return s;
}

function vtg(talker: string, f: string[]): Vtg {
  need(f, 9);
  const s: Vtg = { type: 'VTG', talker };
  assign(s, 'courseDeg', course(f[1]!));
  const kmh = num(f[7]!, 'speed km/h', 0, 2e5);
  const knots = num(f[5]!, 'speed knots', 0, 1e5);
  if (kmh !== undefined) s.speedKmh = kmh;
  else if (knots !== undefined) s.speedKmh = knots * KMH_PER_KNOT;
  return s;
}

function gsa(talker: string, f: string[]): Gsa {
  need(f, 18);
  const mode = f[2]!;
  if (mode !== '1' && mode !== '2' && mode !== '3') throw new FieldError(`fix mode ${show(mode)} is not 1, 2 or 3`);
  return { type: 'GSA', talker, fix: mode === '3' ? '3d' : mode === '2' ? '2d' : 'none' };
}

function zda(talker: string, f: string[], placeholders: string[]): Zda {
  need(f, 5);
  const s: Zda = { type: 'ZDA', talker };
  assign(s, 'timeMs', time(f[1]!));
  const [d, mo, y] = [f[2]!, f[3]!, f[4]!];
  // Before they know the date, receivers send it empty or as 00,00,0000.
  if (/^0*$/.test(d + mo + y) && d + mo + y !== '') placeholders.push(`date ${show(`${d},${mo},${y}`)}`);
  else if (d + mo + y !== '') assign(s, 'dateMs', fullDate(d, mo, y));
  return s;
}

function need(f: string[], n: number): void {
  if (f.length < n) throw new FieldError(`${f.length - 1} fields, needs at least ${n - 1}`);
}

/** Sets only defined values, so an empty field leaves the property absent. */
function assign<T, K extends keyof T>(s: T, key: K, v: T[K] | undefined): void {
  if (v !== undefined) s[key] = v;
}

function time(v: string): number | undefined {
  if (v === '') return undefined;
  const m = /^(\d\d)(\d\d)(\d\d(?:\.\d+)?)$/.exec(v);
  const h = Number(m?.[1]);
  const min = Number(m?.[2]);
  const sec = Number(m?.[3]);
  // 60 is a leap second.
  if (!m || h > 23 || min > 59 || sec >= 61) throw new FieldError(`time ${show(v)} is not hhmmss.ss`);
  return Math.round(((h * 60 + min) * 60 + sec) * 1000);
}

function date(v: string): number | undefined {
  if (v === '') return undefined;
  const m = /^(\d\d)(\d\d)(\d\d)$/.exec(v);
  const [d, mo, yy] = [Number(m?.[1]), Number(m?.[2]), Number(m?.[3])];
  // Two-digit years: GPS began in 1980, so 80-99 are 1900s.
  const ms = calendarDay(yy >= 80 ? 1900 + yy : 2000 + yy, mo, d);
  if (!m || ms === undefined) throw new FieldError(`date ${show(v)} is not ddmmyy`);
  return ms;
}

function fullDate(d: string, mo: string, y: string): number {
  const ms = /^\d\d$/.test(d) && /^\d\d$/.test(mo) && /^\d{4}$/.test(y) ? calendarDay(Number(y), Number(mo), Number(d)) : undefined;
  if (ms === undefined || Number(y) < 1980) throw new FieldError(`date ${show(`${d},${mo},${y}`)} is not dd,mm,yyyy from 1980 on`);
  return ms;
}

/** UTC midnight of a day that exists, else undefined. */
function calendarDay(year: number, month: number, day: number): number | undefined {
  const ms = Date.UTC(year, month - 1, day);
  return month >= 1 && month <= 12 && new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** ddmm.mmmm / dddmm.mmmm plus hemisphere, to signed decimal degrees. */
function coord(v: string, hemi: string, axis: 'lat' | 'lon'): number | undefined {
  if (v === '' && hemi === '') return undefined;
  const [degDigits, max, pos, neg] = axis === 'lat' ? [2, 90, 'N', 'S'] : [3, 180, 'E', 'W'];
  const m = new RegExp(`^(\\d{${degDigits}})(\\d\\d(?:\\.\\d+)?)$`).exec(v);
  const deg = Number(m?.[1]);
  const min = Number(m?.[2]);
  const value = deg + min / 60;
  if (!m || min >= 60 || value > max) throw new FieldError(`${axis} ${show(v)} is not a valid ${axis === 'lat' ? 'ddmm.mm' : 'dddmm.mm'}`);
  if (hemi !== pos && hemi !== neg) throw new FieldError(`${axis} hemisphere ${show(hemi)} is not ${pos} or ${neg}`);
  return hemi === neg ? -value : value;
}

function course(v: string): number | undefined {
  const deg = num(v, 'course', 0, 360);
  return deg === undefined ? undefined : deg % 360;
}

function num(v: string, what: string, min: number, max: number): number | undefined {
  if (v === '') return undefined;
  const n = Number(v);
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(v) || n < min || n > max)
    throw new FieldError(`${what} ${show(v)} is not a number in [${min}, ${max}]`);
  return n;
}

function int(v: string, what: string, min: number, max: number): number | undefined {
  if (v !== '' && !/^\d+$/.test(v)) throw new FieldError(`${what} ${show(v)} is not an integer`);
  return num(v, what, min, max);
}

function refuse(reason: Refusal, detail: string): ParseResult {
  return { ok: false, reason, detail };
}

function show(v: string): string {
  return JSON.stringify(v.length > 20 ? `${v.slice(0, 20)}…` : v);
}

/**
 * A line as it comes off the wire, read from its last `$`: what precedes it is line noise or
 * the tail of a sentence cut by the port opening. Undefined when the line holds no sentence
 * at all (boot banners, garbage).
 */
export function parseLine(raw: string): ParseResult | undefined {
  const start = raw.lastIndexOf('$');
  return start < 0 ? undefined : parseNmea(raw.slice(start).trimEnd());
}
