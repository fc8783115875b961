import type { GpsFix } from '../../shared/contract/reading.js';

/**
 * A small NMEA 0183 reader for the four sentences a position needs: GGA, RMC, VTG, GSA, from
 * any talker. It returns a refusal instead of throwing, for any input, and nothing from a
 * sentence is used unless its checksum matches (the npm `gps` parser updates its state first).
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

export type NmeaSentence = Gga | Rmc | Vtg | Gsa;

/** `checksum`: missing or wrong `*hh`; `unknown`: a sentence we do not read; `malformed`: anything else. */
export type Refusal = 'checksum' | 'unknown' | 'malformed';

export type ParseResult = { ok: true; sentence: NmeaSentence } | { ok: false; reason: Refusal; detail: string };

/** The standard says 82 with `$` and CRLF; real receivers overrun it a little. */
export const MAX_SENTENCE = 120;
export const KMH_PER_KNOT = 1.852;

/** Thrown only inside this module, for the field that makes a sentence malformed. */
class FieldError extends Error {}

export function parseNmea(line: string): ParseResult {
  if (line.length > MAX_SENTENCE) return refuse('malformed', `longer than ${MAX_SENTENCE} characters`);
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
  if (!/^[A-Z]{2}[A-Z]{3}$/.test(address) || address.startsWith('P')) {
    return refuse('unknown', `${show(address)} is not a sentence this reader uses`);
  }
  const talker = address.slice(0, 2);
  const type = address.slice(2);
  try {
    switch (type) {
      case 'GGA':
        return accept(gga(talker, fields));
      case 'RMC':
        return accept(rmc(talker, fields));
      case 'VTG':
        return accept(vtg(talker, fields));
      case 'GSA':
        return accept(gsa(talker, fields));
      default:
        return refuse('unknown', `${address} is not a sentence this reader uses`);
    }
  } catch (err) {
    if (err instanceof FieldError) return refuse('malformed', `${address}: ${err.message}`);
    throw err;
  }
}

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

function rmc(talker: string, f: string[]): Rmc {
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
  assign(s, 'dateMs', date(f[9]!));
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
  const year = yy >= 80 ? 1900 + yy : 2000 + yy;
  const ms = Date.UTC(year, mo - 1, d);
  if (!m || new Date(ms).getUTCDate() !== d || mo < 1 || mo > 12) throw new FieldError(`date ${show(v)} is not ddmmyy`);
  return ms;
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
  if (!/^[-+]?(\d+\.?\d*|\.\d+)$/.test(v) || n < min || n > max) throw new FieldError(`${what} ${show(v)} is not a number in [${min}, ${max}]`);
  return n;
}

function int(v: string, what: string, min: number, max: number): number | undefined {
  if (v !== '' && !/^\d+$/.test(v)) throw new FieldError(`${what} ${show(v)} is not an integer`);
  return num(v, what, min, max);
}

function accept(sentence: NmeaSentence): ParseResult {
  return { ok: true, sentence };
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
