import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { checkBatch, type Batch } from './batch.js';
import { ContractError } from './errors.js';
import { show } from './validate.js';
import { CLOCKS, FIXES, QUALITIES, sensorSpec, type Position, type Reading } from './reading.js';
import { sensorByCode, V1_MAX_CODE } from './sensors.js';
import { ByteReader, ByteWriter } from './varint.js';

/**
 * Telemetry wire encoding. Two forms share the topic:
 *  - compact binary (what the agent sends; cellular bytes cost money), first byte 0xFB;
 *  - JSON (for third-party devices and debugging), first byte `{`.
 * The vehicle is never on the wire: it is the topic's, so a payload cannot claim another.
 * The full layout is in docs/CONTRACT.md.
 */
export const BINARY_MAGIC = 0xfb;
/**
 * Version 1 carries the first five sensors (codes 0-4) in the header's 3 sensor bits.
 * Version 2 is version 1 plus an escape: sensor bits 7 mean a uvarint code follows, so the
 * catalogue can grow. The encoder writes version 1 whenever the batch fits it, so a truck
 * with the first five sensors speaks to a gateway of either generation.
 */
const VERSIONS = [1, 2] as const;
const FLAG_DEFLATE = 0x01;
/** Flag bits no version defines yet: a payload with one set was made by a newer or broken encoder. */
const RESERVED_FLAGS = 0x0e;
const DIRECT_CODES = 7;
/** Values travel as integers of hundredths; the agent stores them already rounded so both agree. */
export const VALUE_SCALE = 100;
const COORD_SCALE = 1e7;
const HEADING_SCALE = 10;
/** A decompressed payload larger than this is refused before it can exhaust memory. */
const MAX_INFLATED_BYTES = 4 * 1024 * 1024;

export type Encoding = 'binary' | 'json';

export interface EncodeOptions {
  encoding?: Encoding;
  compress?: boolean;
}

export function quantize(value: number): number {
  return Math.round(value * VALUE_SCALE) / VALUE_SCALE;
}

export function encodeBatch(batch: Batch, opts: EncodeOptions = {}): Buffer {
  if (opts.encoding === 'json') {
    return Buffer.from(JSON.stringify({ headTs: batch.headTs, readings: batch.readings.map(stripVehicle) }));
  }
  const version = batch.readings.every((r) => sensorSpec(r.sensor).code <= V1_MAX_CODE) ? 1 : 2;
  const body = encodeBody(batch);
  const compress = opts.compress ?? false;
  const payload = compress ? deflateRawSync(body) : body;
  return Buffer.concat([Buffer.from([BINARY_MAGIC, (version << 4) | (compress ? FLAG_DEFLATE : 0)]), payload]);
}

/** Decodes and validates; throws ContractError naming what is wrong. */
export function decodeBatch(vehicle: string, payload: Buffer, now = Date.now()): Batch {
  if (payload.length === 0) throw new ContractError('payload is empty');
  const batch = payload[0] === BINARY_MAGIC ? decodeBinary(vehicle, payload) : decodeJson(vehicle, payload);
  return checkBatch(batch, now);
}

/**
 * Whether a payload that decoded is already the binary encoding, uncompressed: a stream record
 * can carry it as the vehicle sent it instead of encoding the batch again.
 */
export function isPlainBinary(payload: Buffer): boolean {
  return payload[0] === BINARY_MAGIC && (payload[1]! & FLAG_DEFLATE) === 0;
}

function stripVehicle(r: Reading): Omit<Reading, 'vehicle'> {
  const { vehicle: _vehicle, ...rest } = r;
  return rest;
}

function encodeBody(batch: Batch): Buffer {
  const w = new ByteWriter();
  const rs = batch.readings;
  w.uvarint(rs.length);
  w.uvarint(batch.headTs);
  w.uvarint(rs[0]!.seq);
  w.uvarint(rs[0]!.ts);
  let prev = rs[0]!;
  rs.forEach((r, i) => {
    const seqDelta = i === 0 ? 1 : r.seq - prev.seq;
    const code = sensorSpec(r.sensor).code;
    // header: sensor (3 bits, 7 = escaped) | quality (2) | clock (1) | explicit seq delta (1)
    w.byte(
      Math.min(code, DIRECT_CODES) | (QUALITIES.indexOf(r.quality) << 3) | (CLOCKS.indexOf(r.clock) << 5) | (seqDelta === 1 ? 0 : 0x40),
    );
    if (code >= DIRECT_CODES) w.uvarint(code);
    if (seqDelta !== 1) w.uvarint(seqDelta);
    if (i > 0) w.svarint(r.ts - prev.ts);
    w.svarint(Math.round(r.value * VALUE_SCALE));
    if (r.sensor === 'gps') {
      const p = r.position!;
      w.svarint(Math.round(p.lat * COORD_SCALE));
      w.svarint(Math.round(p.lon * COORD_SCALE));
      w.uvarint(Math.round(p.heading * HEADING_SCALE));
      w.byte(FIXES.indexOf(p.fix));
    }
    prev = r;
  });
  return w.bytes();
}

function decodeBinary(vehicle: string, payload: Buffer): Batch {
  if (payload.length < 2) throw new ContractError('binary payload shorter than its 2-byte header');
  const version = payload[1]! >> 4;
  if (!(VERSIONS as readonly number[]).includes(version)) {
    throw new ContractError(`binary payload version ${version} is not supported (expected ${VERSIONS.join(' or ')})`);
  }
  if (payload[1]! & RESERVED_FLAGS)
    throw new ContractError(`binary payload flags 0x${(payload[1]! & 0x0f).toString(16)} set a reserved bit`);
  let body = payload.subarray(2);
  if (payload[1]! & FLAG_DEFLATE) {
    let consumed: number;
    try {
      // `info` reports how much input the stream used: zlib itself ignores bytes after its end.
      const out = inflateRawSync(body, { maxOutputLength: MAX_INFLATED_BYTES, info: true }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      consumed = out.engine.bytesWritten;
      body = out.buffer;
    } catch (err) {
      throw new ContractError(`compressed payload does not inflate: ${(err as Error).message}`);
    }
    const extra = payload.length - 2 - consumed;
    if (extra !== 0) throw new ContractError(`${extra} bytes left after the compressed body`);
  }
  const rd = new ByteReader(body);
  const n = rd.uvarint('reading count');
  if (n === 0 || n > body.length) throw new ContractError(`reading count ${n} does not fit a ${body.length}-byte body`);
  const headTs = rd.uvarint('headTs');
  let seq = rd.uvarint('first seq');
  let ts = rd.uvarint('first ts');
  const readings: Reading[] = [];
  for (let i = 0; i < n; i++) {
    rd.within('readings', i);
    const h = rd.byte('header');
    const quality = QUALITIES[(h >> 3) & 0x03];
    if (quality === undefined) throw new ContractError(`readings[${i}]: unknown quality code ${(h >> 3) & 0x03}`);
    if (h & 0x80) throw new ContractError(`readings[${i}]: reserved header bit is set`);
    const code = (h & 0x07) === DIRECT_CODES && version >= 2 ? rd.uvarint('sensor code') : h & 0x07;
    const spec = sensorByCode(code);
    if (spec === undefined || (version === 1 && code > V1_MAX_CODE) || code >= DIRECT_CODES !== ((h & 0x07) === DIRECT_CODES)) {
      throw new ContractError(`readings[${i}]: unknown sensor code ${code}${version === 1 ? ' in a version 1 payload' : ''}`);
    }
    const sensor = spec.id;
    if (i > 0) {
      seq += h & 0x40 ? rd.uvarint('seq delta') : 1;
      ts += rd.svarint('ts delta');
    }
    const value = rd.svarint('value') / VALUE_SCALE;
    const reading: Reading = { vehicle, seq, ts, clock: CLOCKS[(h >> 5) & 0x01]!, sensor, value, quality };
    if (sensor === 'gps') reading.position = readPosition(rd, i);
    readings.push(reading);
  }
  if (rd.remaining !== 0) throw new ContractError(`${rd.remaining} bytes left after the last reading`);
  return { vehicle, headTs, readings };
}

function readPosition(rd: ByteReader, i: number): Position {
  const lat = rd.svarint('lat') / COORD_SCALE;
  const lon = rd.svarint('lon') / COORD_SCALE;
  const heading = rd.uvarint('heading') / HEADING_SCALE;
  const fixCode = rd.byte('fix');
  const fix = FIXES[fixCode];
  if (fix === undefined) throw new ContractError(`readings[${i}].position.fix: unknown fix code ${fixCode}`);
  return { lat, lon, heading, fix };
}

function decodeJson(vehicle: string, payload: Buffer): Batch {
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new ContractError(`payload is neither binary (first byte 0xfb) nor valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new ContractError('JSON payload must be an object {"headTs", "readings": [...]}');
  }
  const { headTs, readings, vehicle: claimed } = doc as { headTs?: unknown; readings?: unknown; vehicle?: unknown };
  if (claimed !== undefined && claimed !== vehicle) {
    throw new ContractError(`batch.vehicle: ${show(claimed)} does not match the topic's vehicle ${show(vehicle)}`);
  }
  if (!Array.isArray(readings)) throw new ContractError('JSON payload: "readings" must be an array');
  const withVehicle = readings.map((r: unknown) => (typeof r === 'object' && r !== null ? { vehicle, ...r } : r)) as Reading[];
  const lastTs = withVehicle.at(-1)?.ts;
  return { vehicle, headTs: (headTs ?? lastTs) as number, readings: withVehicle };
}
