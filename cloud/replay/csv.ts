import { open } from 'node:fs/promises';
import { ContractError } from '../../shared/contract/errors.js';
import { SENSORS, type Reading, type SensorId } from '../../shared/contract/reading.js';
import { checkReading } from '../../shared/contract/validate.js';
import { ReplayInputError } from './errors.js';

export const DEFAULT_VEHICLE = 'replay';
export const DEFAULT_SENSOR: SensorId = 'engine_temp';

export interface CsvOptions {
  /** Two-column files: the vehicle of every row. Four-column files: only this vehicle's rows are read. */
  vehicle?: string;
  /** Two-column files: the sensor of every row. Four-column files: only this sensor's rows are read. */
  sensor?: SensorId;
}

export interface CsvRow {
  /** 1-based line in the file, for messages that point the user at the row. */
  line: number;
  reading: Reading;
}

const EPOCH_MS = /^\d+$/;
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i;
const GPS_UNSUPPORTED = 'gps rows are not supported in CSV (a gps reading needs a position)';

/**
 * Streams the rows of a recorded-telemetry CSV as validated readings, so a replay of a
 * month of history needs no more memory than one line. Layout: `timestamp,value` or
 * `timestamp,vehicle,sensor,value`, fixed by the first row; an optional header, blank
 * lines and `#` comments are skipped. Any bad row stops the stream with a
 * `file:line: problem` error, because tuning rules on silently dropped data misleads.
 */
export async function* readCsv(file: string, opts: CsvOptions = {}): AsyncGenerator<CsvRow> {
  for await (const rows of readCsvBatches(file, opts)) yield* rows;
}

/** Line ends: \r\n, \n or a lone \r; a \r ending a chunk waits for the next chunk's first character. */
const LINE_END = /\r\n|\n|\r(?!$)/;

/**
 * readCsv's rows a read's worth at a time (16 KiB of the file, small enough to stay in the
 * CPU's caches): a million-row file is some thousand awaits rather than a million, which are
 * most of a replay's time otherwise.
 */
export async function* readCsvBatches(file: string, opts: CsvOptions = {}): AsyncGenerator<CsvRow[]> {
  if (opts.sensor === 'gps') throw new ReplayInputError(`${file}: ${GPS_UNSUPPORTED}`);
  const handle = await open(file).catch((err: Error) => {
    throw new ReplayInputError(`${file}: cannot open: ${err.message}`);
  });
  const input = handle.createReadStream({ encoding: 'utf8', highWaterMark: 16 * 1024 });
  // Checked against once per file: replayed history is never in the future, and a
  // timestamp in µs or seconds then fails loudly instead of landing in 1970 or 50000 AD.
  const now = Date.now();
  const seqs = new Map<string, number>();
  let columns: number | undefined;
  let lineNo = 0;
  const parseLine = (raw: string): CsvRow | undefined => {
    lineNo++;
    const text = (lineNo === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
    if (text === '' || text.startsWith('#')) return undefined;
    const at = `${file}:${lineNo}`;
    const fields = text.split(',').map(unquote);
    if (columns === undefined) {
      if (fields.length !== 2 && fields.length !== 4) {
        throw new ReplayInputError(
          `${at}: expected 2 columns (timestamp,value) or 4 (timestamp,vehicle,sensor,value), got ${fields.length}`,
        );
      }
      columns = fields.length;
      if (isHeader(fields)) return undefined;
    } else if (fields.length !== columns) {
      throw new ReplayInputError(`${at}: expected ${columns} columns like the rows above, got ${fields.length}`);
    }
    const reading = parseRow(fields, at, opts, seqs, now);
    if (columns === 4 && !selected(reading, opts)) return undefined;
    return { line: lineNo, reading };
  };
  let rest = '';
  try {
    for await (const chunk of input as AsyncIterable<string>) {
      const lines = (rest + chunk).split(LINE_END);
      rest = lines.pop()!;
      const rows: CsvRow[] = [];
      for (const raw of lines) {
        const row = parseLine(raw);
        if (row !== undefined) rows.push(row);
      }
      if (rows.length > 0) yield rows;
    }
    const last = rest === '' ? undefined : parseLine(rest);
    if (last !== undefined) yield [last];
  } catch (err) {
    // Read errors surface from the stream without the path the user gave.
    if ((err as NodeJS.ErrnoException).syscall !== undefined) throw new ReplayInputError(`${file}: cannot read: ${(err as Error).message}`);
    throw err;
  } finally {
    input.destroy();
  }
}

function parseRow(fields: string[], at: string, opts: CsvOptions, seqs: Map<string, number>, now: number): Reading {
  const [tsField, vehicle, sensorField, valueField] =
    fields.length === 2
      ? [fields[0]!, opts.vehicle ?? DEFAULT_VEHICLE, opts.sensor ?? DEFAULT_SENSOR, fields[1]!]
      : (fields as [string, string, string, string]);
  const ts = parseTimestamp(tsField);
  if (ts === undefined) throw new ReplayInputError(`${at}: timestamp "${tsField}" is neither ms since epoch nor ISO-8601`);
  if (!(SENSORS as readonly string[]).includes(sensorField)) {
    throw new ReplayInputError(`${at}: sensor "${sensorField}" is not one of ${SENSORS.filter((s) => s !== 'gps').join(', ')}`);
  }
  const sensor = sensorField as SensorId;
  if (sensor === 'gps') throw new ReplayInputError(`${at}: ${GPS_UNSUPPORTED}`);
  if (!NUMBER.test(valueField)) throw new ReplayInputError(`${at}: value "${valueField}" is not a number`);
  // Seq is counted over every valid row, selected or not, so it does not depend on filters.
  const seq = (seqs.get(vehicle) ?? 0) + 1;
  const reading: Reading = { vehicle, seq, ts, clock: 'synced', sensor, value: Number(valueField), quality: 'good' };
  try {
    checkReading(reading, now);
  } catch (err) {
    if (err instanceof ContractError) throw new ReplayInputError(`${at}: ${err.message}`);
    throw err;
  }
  seqs.set(vehicle, seq);
  return reading;
}

function selected(r: Reading, opts: CsvOptions): boolean {
  return (opts.vehicle === undefined || r.vehicle === opts.vehicle) && (opts.sensor === undefined || r.sensor === opts.sensor);
}

/** A header is a first row that cannot be data: no timestamp and no numbers anywhere. */
function isHeader(fields: string[]): boolean {
  return parseTimestamp(fields[0]!) === undefined && !fields.some((f) => NUMBER.test(f));
}

/** Spreadsheets quote fields on export; commas inside fields never occur in this format. */
function unquote(field: string): string {
  const f = field.trim();
  return f.length >= 2 && f.startsWith('"') && f.endsWith('"') ? f.slice(1, -1).trim() : f;
}

/**
 * Ms since epoch or ISO-8601. An ISO time without an offset is taken as UTC, the
 * fleet's event-time zone, so a replay does not depend on the machine it runs on.
 */
export function parseTimestamp(s: string): number | undefined {
  if (EPOCH_MS.test(s)) return Number(s);
  const m = ISO_8601.exec(s);
  if (m === null) return undefined;
  const [, year, month, day, hour, , , zone] = m;
  // Date.parse rolls 2024-02-30 over into March; a calendar date that does not exist is a typo.
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  if (date.getUTCMonth() !== Number(month) - 1 || date.getUTCDate() !== Number(day)) return undefined;
  let normal = s.toUpperCase().replace(' ', 'T');
  if (hour !== undefined && zone === undefined) normal += 'Z';
  else if (zone !== undefined && /^[+-]\d{4}$/.test(zone)) normal = `${normal.slice(0, -2)}:${normal.slice(-2)}`;
  const ts = Date.parse(normal);
  return Number.isNaN(ts) ? undefined : ts;
}
