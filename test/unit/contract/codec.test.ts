import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { alertId, parseAlert, type Alert } from '../../../shared/contract/alert.js';
import { checkBatch, MAX_BATCH_READINGS, type Batch } from '../../../shared/contract/batch.js';
import { BINARY_MAGIC, decodeBatch, encodeBatch, quantize } from '../../../shared/contract/codec.js';
import { ContractError } from '../../../shared/contract/errors.js';
import type { Reading } from '../../../shared/contract/reading.js';
import { parseTopic, topics, TOPIC_ROOT } from '../../../shared/contract/topics.js';
import { checkReading, MAX_CLOCK_AHEAD_MS, MIN_TS } from '../../../shared/contract/validate.js';
import { ByteWriter } from '../../../shared/contract/varint.js';
import { Random } from '../../../simulators/random.js';

// A fixed "now" keeps the clock-ahead check deterministic whatever the machine's clock says.
const NOW = Date.UTC(2024, 5, 1, 12);
const T = NOW - 60_000;
const V = 'truck-7';

type R = Omit<Reading, 'vehicle'>;
const reading = (r: R, vehicle = V): Reading => ({ vehicle, ...r });
const batchOf = (rs: R[], headTs = rs.at(-1)!.ts + 5): Batch => ({ vehicle: V, headTs, readings: rs.map((r) => reading(r)) });

/** Every sensor, quality and clock, seq gaps, ts stepping back, negative and extreme values. */
const MIXED: R[] = [
  { seq: 41, ts: T, clock: 'synced', sensor: 'engine_temp', value: 91.25, quality: 'good' },
  { seq: 42, ts: T + 3, clock: 'unsynced', sensor: 'container_temp', value: -18.5, quality: 'uncertain' },
  // seq gap (evicted readings) and ts a little earlier than the previous reading
  { seq: 45, ts: T + 2, clock: 'synced', sensor: 'speed', value: 87.3, quality: 'bad' },
  {
    seq: 46,
    ts: T + 250,
    clock: 'synced',
    sensor: 'gps',
    value: 86.9,
    quality: 'good',
    position: { lat: 52.5200066, lon: 13.404954, heading: 359.9, fix: '3d' },
  },
  { seq: 47, ts: T + 251, clock: 'unsynced', sensor: 'rpm', value: 1450.75, quality: 'bad' },
  {
    seq: 1000,
    ts: T + 1000,
    clock: 'unsynced',
    sensor: 'gps',
    value: 0,
    quality: 'uncertain',
    position: { lat: -33.8688197, lon: -151.2092955, heading: 0, fix: 'none' },
  },
  {
    seq: 1001,
    ts: T + 999,
    clock: 'synced',
    sensor: 'gps',
    value: 400,
    quality: 'bad',
    position: { lat: 90, lon: -180, heading: 180.5, fix: '2d' },
  },
  { seq: 1002, ts: T + 998, clock: 'unsynced', sensor: 'engine_temp', value: -40.01, quality: 'good' },
  { seq: 1003, ts: T + 40_000, clock: 'synced', sensor: 'container_temp', value: -80, quality: 'bad' },
  { seq: 1004, ts: T + 40_000, clock: 'synced', sensor: 'rpm', value: 0, quality: 'uncertain' },
  { seq: 2 ** 40, ts: T + 40_001, clock: 'unsynced', sensor: 'speed', value: 400, quality: 'uncertain' },
  { seq: 2 ** 40 + 1, ts: T + 39_000, clock: 'synced', sensor: 'engine_temp', value: 250, quality: 'uncertain' },
];

/** A typical second of agent output: engine, cargo, speed and rpm at 2 Hz, gps at 1 Hz. */
const TYPICAL: R[] = [
  { seq: 123_456, ts: T + 0, clock: 'synced', sensor: 'engine_temp', value: 90.12, quality: 'good' },
  { seq: 123_457, ts: T + 0, clock: 'synced', sensor: 'container_temp', value: 4.56, quality: 'good' },
  { seq: 123_458, ts: T + 0, clock: 'synced', sensor: 'speed', value: 83.4, quality: 'good' },
  {
    seq: 123_459,
    ts: T + 0,
    clock: 'synced',
    sensor: 'gps',
    value: 83.4,
    quality: 'good',
    position: { lat: 48.1371079, lon: 11.5753822, heading: 271.3, fix: '3d' },
  },
  { seq: 123_460, ts: T + 0, clock: 'synced', sensor: 'rpm', value: 1432.5, quality: 'good' },
  { seq: 123_461, ts: T + 500, clock: 'synced', sensor: 'engine_temp', value: 90.15, quality: 'good' },
  { seq: 123_462, ts: T + 500, clock: 'synced', sensor: 'speed', value: 83.6, quality: 'good' },
  { seq: 123_463, ts: T + 500, clock: 'synced', sensor: 'rpm', value: 1440, quality: 'good' },
  { seq: 123_464, ts: T + 999, clock: 'synced', sensor: 'container_temp', value: 4.55, quality: 'good' },
  {
    seq: 123_465,
    ts: T + 1000,
    clock: 'synced',
    sensor: 'gps',
    value: 83.7,
    quality: 'good',
    position: { lat: 48.1371012, lon: 11.5750451, heading: 271.4, fix: '3d' },
  },
];

const json = (doc: unknown) => Buffer.from(JSON.stringify(doc));
const jsonBatch = (readings: unknown[], headTs: unknown = T + 10) => json({ headTs, readings });
const good = (over: Record<string, unknown> = {}) => ({
  seq: 1,
  ts: T,
  clock: 'synced',
  sensor: 'engine_temp',
  value: 90,
  quality: 'good',
  ...over,
});

/** Asserts a ContractError whose message matches exactly or by pattern: the sender must be able to act on it. */
function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ContractError, `expected a ContractError, got ${String(err)}`);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

/** Builds a binary payload by hand, to reach decoder paths the encoder never produces. */
function rawBinary(write: (w: ByteWriter) => void, flags = 0x10): Buffer {
  const w = new ByteWriter();
  write(w);
  return Buffer.concat([Buffer.from([BINARY_MAGIC, flags]), w.bytes()]);
}

describe('codec round-trip', () => {
  for (const compress of [false, true]) {
    it(`decodes exactly what it encoded (binary, compress=${compress})`, () => {
      const batch = batchOf(MIXED);
      const payload = encodeBatch(batch, { compress });
      assert.equal(payload[0], BINARY_MAGIC);
      assert.equal(payload[1]! & 0x01, compress ? 1 : 0);
      assert.deepEqual(decodeBatch(V, payload, NOW), batch);
    });
  }

  it('writes version 1 for the first five sensors and version 2 beyond them, both round-tripping', () => {
    assert.equal(encodeBatch(batchOf(MIXED))[1]! >> 4, 1);
    const extended = batchOf([
      ...TYPICAL.slice(0, 3),
      { seq: 123_470, ts: T + 600, clock: 'synced', sensor: 'engine_load', value: 63.53, quality: 'good' },
      { seq: 123_471, ts: T + 600, clock: 'synced', sensor: 'ambient_temp', value: -12, quality: 'good' },
      { seq: 123_472, ts: T + 610, clock: 'synced', sensor: 'module_voltage', value: 14.12, quality: 'good' },
      { seq: 123_480, ts: T + 700, clock: 'synced', sensor: 'generic', value: -123456789.12, quality: 'uncertain' },
      { seq: 123_481, ts: T + 700, clock: 'synced', sensor: 'cargo_setpoint', value: -18, quality: 'good' },
    ]);
    for (const compress of [false, true]) {
      const payload = encodeBatch(extended, { compress });
      assert.equal(payload[1]! >> 4, 2);
      assert.deepEqual(decodeBatch(V, payload, NOW), extended);
    }
  });

  it('round-trips the JSON form, which carries no vehicle', () => {
    const batch = batchOf(MIXED);
    const payload = encodeBatch(batch, { encoding: 'json' });
    assert.equal(payload[0], '{'.charCodeAt(0));
    assert.ok(!payload.toString().includes(V), 'the vehicle belongs to the topic, never the payload');
    assert.deepEqual(decodeBatch(V, payload, NOW), batch);
  });

  it('gives the topic vehicle to every reading of a binary payload', () => {
    const decoded = decodeBatch('other-truck', encodeBatch(batchOf(TYPICAL)), NOW);
    assert.equal(decoded.vehicle, 'other-truck');
    assert.ok(decoded.readings.every((r) => r.vehicle === 'other-truck'));
  });

  it('round-trips every single reading on its own, and a one-reading batch', () => {
    for (const r of MIXED) {
      const batch = batchOf([r], r.ts);
      assert.deepEqual(decodeBatch(V, encodeBatch(batch), NOW), batch);
      assert.deepEqual(decodeBatch(V, encodeBatch(batch, { compress: true }), NOW), batch);
    }
  });

  it('sends values as hundredths: what comes out is quantize(value)', () => {
    const raw: R[] = [
      { seq: 1, ts: T, clock: 'synced', sensor: 'engine_temp', value: 90.123456, quality: 'good' },
      { seq: 2, ts: T + 1, clock: 'synced', sensor: 'container_temp', value: -3.14159, quality: 'good' },
      { seq: 3, ts: T + 2, clock: 'synced', sensor: 'rpm', value: 1499.996, quality: 'good' },
    ];
    const out = decodeBatch(V, encodeBatch(batchOf(raw)), NOW).readings.map((r) => r.value);
    assert.deepEqual(out, [90.12, -3.14, 1500]);
    assert.deepEqual(
      out,
      raw.map((r) => quantize(r.value)),
    );
  });

  it('takes headTs from the last reading when a JSON payload omits it', () => {
    const decoded = decodeBatch(V, json({ readings: [good({ seq: 1, ts: T }), good({ seq: 2, ts: T + 700 })] }), NOW);
    assert.equal(decoded.headTs, T + 700);
  });

  it('is small: at most 24 bytes a reading for a typical 10-reading second', () => {
    const batch = batchOf(TYPICAL);
    const binary = encodeBatch(batch);
    assert.equal(batch.readings.length, 10);
    assert.ok(binary.length <= 24 * 10, `${binary.length} bytes for 10 readings`);
    const asJson = encodeBatch(batch, { encoding: 'json' });
    assert.ok(binary.length * 4 < asJson.length, `binary ${binary.length} vs JSON ${asJson.length} bytes`);
  });
});

describe('decodeBatch errors', () => {
  const valid = encodeBatch(batchOf(MIXED));
  const validCompressed = encodeBatch(batchOf(MIXED), { compress: true });

  it('refuses an empty payload', () => {
    rejects(() => decodeBatch(V, Buffer.alloc(0), NOW), 'payload is empty');
  });

  it('refuses a lone magic byte', () => {
    rejects(() => decodeBatch(V, Buffer.from([BINARY_MAGIC]), NOW), 'binary payload shorter than its 2-byte header');
  });

  for (const [name, payload] of [
    ['uncompressed', valid],
    ['compressed', validCompressed],
  ] as const) {
    it(`refuses every truncation of a valid ${name} payload with a ContractError`, () => {
      for (let n = 0; n < payload.length; n++) {
        assert.throws(
          () => decodeBatch(V, payload.subarray(0, n), NOW),
          (err: unknown) => err instanceof ContractError,
          `truncated to ${n} of ${payload.length} bytes`,
        );
      }
    });
  }

  it('says where a truncated body ends', () => {
    rejects(() => decodeBatch(V, valid.subarray(0, valid.length - 1), NOW), /^payload ends inside readings\[11\] value$/);
    // Cut so short that the count no longer fits: refused before any reading is parsed.
    rejects(() => decodeBatch(V, valid.subarray(0, 3), NOW), 'reading count 12 does not fit a 1-byte body');
    rejects(() => decodeBatch(V, Buffer.from([BINARY_MAGIC, 0x10, 1, 0x80]), NOW), 'payload ends inside headTs');
  });

  it('refuses trailing bytes after the last reading', () => {
    rejects(() => decodeBatch(V, Buffer.concat([valid, Buffer.from([0])]), NOW), '1 bytes left after the last reading');
    rejects(() => decodeBatch(V, Buffer.concat([valid, Buffer.from([1, 2, 3])]), NOW), '3 bytes left after the last reading');
  });

  it('refuses trailing bytes inside a compressed body', () => {
    const body = valid.subarray(2);
    const payload = Buffer.concat([valid.subarray(0, 2), deflateRawSync(Buffer.concat([body, Buffer.from([7, 7])]))]);
    payload[1] = payload[1]! | 0x01;
    rejects(() => decodeBatch(V, payload, NOW), '2 bytes left after the last reading');
  });

  it('refuses bytes after the end of the deflate stream', () => {
    // Otherwise a compressed payload could smuggle data that an uncompressed one may not.
    rejects(() => decodeBatch(V, Buffer.concat([validCompressed, Buffer.from([1, 2, 3])]), NOW), '3 bytes left after the compressed body');
  });

  it('refuses an unknown version', () => {
    for (const [flags, version] of [
      [0x30, 3],
      [0x00, 0],
      [0xf1, 15],
    ] as const) {
      const payload = Buffer.from(valid);
      payload[1] = flags;
      rejects(() => decodeBatch(V, payload, NOW), `binary payload version ${version} is not supported (expected 1 or 2)`);
    }
  });

  it('refuses the reserved flag bits', () => {
    for (const flag of [0x02, 0x04, 0x08]) {
      const payload = Buffer.from(valid);
      payload[1] = 0x10 | flag;
      rejects(() => decodeBatch(V, payload, NOW), `binary payload flags 0x${flag.toString(16)} set a reserved bit`);
    }
  });

  it('refuses a corrupt deflate body', () => {
    const payload = Buffer.from([BINARY_MAGIC, 0x11, 0xff, 0xff, 0xff, 0xff, 0x00, 0x13]);
    rejects(() => decodeBatch(V, payload, NOW), /^compressed payload does not inflate: /);
  });

  it('refuses a zero or impossible reading count', () => {
    rejects(
      () =>
        decodeBatch(
          V,
          rawBinary((w) => w.uvarint(0)),
          NOW,
        ),
      'reading count 0 does not fit a 1-byte body',
    );
    rejects(
      () =>
        decodeBatch(
          V,
          rawBinary((w) => {
            w.uvarint(500);
            w.uvarint(T);
          }),
          NOW,
        ),
      /^reading count 500 does not fit a 8-byte body$/,
    );
  });

  it('refuses unknown header codes and the reserved bit', () => {
    const one = (header: number, tail?: (w: ByteWriter) => void) =>
      rawBinary((w) => {
        w.uvarint(1);
        w.uvarint(T);
        w.uvarint(1);
        w.uvarint(T);
        w.byte(header);
        w.svarint(100);
        tail?.(w);
      });
    // Version 1 knows the first five sensors only; version 2 escapes codes from 7 on.
    rejects(() => decodeBatch(V, one(5), NOW), 'readings[0]: unknown sensor code 5 in a version 1 payload');
    rejects(() => decodeBatch(V, one(7), NOW), 'readings[0]: unknown sensor code 7 in a version 1 payload');
    const v2 = (header: number, tail: (w: ByteWriter) => void) =>
      rawBinary((w) => {
        w.uvarint(1);
        w.uvarint(T);
        w.uvarint(1);
        w.uvarint(T);
        w.byte(header);
        tail(w);
      }, 0x20);
    assert.equal(
      decodeBatch(
        V,
        v2(5, (w) => w.svarint(4200)),
        NOW,
      ).readings[0]!.sensor,
      'engine_load',
    );
    assert.equal(
      decodeBatch(
        V,
        v2(7, (w) => {
          w.uvarint(9);
          w.svarint(1410);
        }),
        NOW,
      ).readings[0]!.sensor,
      'module_voltage',
    );
    rejects(
      () =>
        decodeBatch(
          V,
          v2(7, (w) => {
            w.uvarint(99);
            w.svarint(1);
          }),
          NOW,
        ),
      'readings[0]: unknown sensor code 99',
    );
    // A code that fits the header must not be escaped: one reading, one encoding.
    rejects(
      () =>
        decodeBatch(
          V,
          v2(7, (w) => {
            w.uvarint(2);
            w.svarint(1);
          }),
          NOW,
        ),
      'readings[0]: unknown sensor code 2',
    );
    rejects(() => decodeBatch(V, one(3 << 3), NOW), 'readings[0]: unknown quality code 3');
    rejects(() => decodeBatch(V, one(0x80), NOW), 'readings[0]: reserved header bit is set');
    const gps = (fix: number) =>
      one(3, (w) => {
        w.svarint(0);
        w.svarint(0);
        w.uvarint(0);
        w.byte(fix);
      });
    assert.equal(decodeBatch(V, gps(2), NOW).readings[0]!.position!.fix, '3d');
    rejects(() => decodeBatch(V, gps(3), NOW), 'readings[0].position.fix: unknown fix code 3');
  });

  it('refuses a varint longer than 8 bytes', () => {
    const payload = Buffer.from([BINARY_MAGIC, 0x10, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
    rejects(() => decodeBatch(V, payload, NOW), 'headTs: varint longer than 8 bytes');
  });

  it('refuses invalid JSON', () => {
    rejects(() => decodeBatch(V, Buffer.from('{"headTs": 1,'), NOW), /^payload is neither binary \(first byte 0xfb\) nor valid JSON: /);
    rejects(() => decodeBatch(V, Buffer.from([0x00, 0x01]), NOW), /^payload is neither binary/);
  });

  it('refuses JSON that is not an object', () => {
    for (const doc of ['[1,2]', '42', 'null', '"batch"', 'true']) {
      rejects(() => decodeBatch(V, Buffer.from(doc), NOW), 'JSON payload must be an object {"headTs", "readings": [...]}');
    }
  });

  it('refuses JSON without a readings array, or with none or too many readings', () => {
    rejects(() => decodeBatch(V, json({ headTs: T }), NOW), 'JSON payload: "readings" must be an array');
    rejects(() => decodeBatch(V, json({ headTs: T, readings: {} }), NOW), 'JSON payload: "readings" must be an array');
    rejects(() => decodeBatch(V, jsonBatch([]), NOW), 'batch.readings: must hold 1 to 10000 readings, got 0');
    const many = Array.from({ length: MAX_BATCH_READINGS + 1 }, (_, i) => good({ seq: i + 1 }));
    rejects(() => decodeBatch(V, jsonBatch(many), NOW), 'batch.readings: must hold 1 to 10000 readings, got 10001');
  });

  it('refuses a reading that is not an object', () => {
    rejects(() => decodeBatch(V, jsonBatch([good(), 5]), NOW), 'readings[1]: must be an object, got 5');
    rejects(() => decodeBatch(V, jsonBatch([null]), NOW), 'readings[0]: must be an object, got null');
  });

  it('refuses a bad headTs', () => {
    const bounds = 'must be ms since epoch between 2001-01-01T00:00:00.000Z and a day ahead of now';
    rejects(() => decodeBatch(V, jsonBatch([good()], 'soon'), NOW), `batch.headTs: ${bounds}, got "soon"`);
    rejects(() => decodeBatch(V, jsonBatch([good()], 1000), NOW), `batch.headTs: ${bounds}, got 1000`);
    // A runaway agent clock in headTs alone would make the detector treat every alert as history.
    const limit = NOW + MAX_CLOCK_AHEAD_MS;
    rejects(() => decodeBatch(V, jsonBatch([good()], limit + 1), NOW), `batch.headTs: ${bounds}, got ${limit + 1}`);
    assert.equal(decodeBatch(V, jsonBatch([good()], limit), NOW).headTs, limit);
    rejects(() => decodeBatch(V, encodeBatch(batchOf(TYPICAL, NOW + 365 * 86_400_000)), NOW), /^batch\.headTs: /);
  });

  it('refuses a topic vehicle that is not a vehicle id', () => {
    rejects(() => decodeBatch('no spaces', encodeBatch(batchOf(TYPICAL)), NOW), /^batch\.vehicle: must be 1-64 characters/);
  });

  it('refuses a reading of another vehicle', () => {
    rejects(
      () => decodeBatch(V, jsonBatch([good(), good({ seq: 2, vehicle: 'truck-8' })]), NOW),
      'readings[1].vehicle: "truck-8" does not match the topic\'s vehicle "truck-7"',
    );
  });

  it("refuses a JSON batch whose own vehicle is not the topic's", () => {
    rejects(
      () => decodeBatch(V, json({ vehicle: 'truck-8', headTs: T, readings: [good()] }), NOW),
      'batch.vehicle: "truck-8" does not match the topic\'s vehicle "truck-7"',
    );
    assert.equal(decodeBatch(V, json({ vehicle: V, headTs: T, readings: [good()] }), NOW).vehicle, V);
  });

  it('refuses seq that does not increase', () => {
    rejects(
      () => decodeBatch(V, jsonBatch([good({ seq: 5 }), good({ seq: 5 })]), NOW),
      'readings[1].seq: 5 does not follow 5; seq must increase',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ seq: 5 }), good({ seq: 6 }), good({ seq: 4 })]), NOW),
      'readings[2].seq: 4 does not follow 6; seq must increase',
    );
    rejects(() => decodeBatch(V, jsonBatch([good({ seq: 0 })]), NOW), 'readings[0].seq: must be a positive integer, got 0');
    rejects(() => decodeBatch(V, jsonBatch([good({ seq: 1.5 })]), NOW), 'readings[0].seq: must be a positive integer, got 1.5');
  });

  it('refuses NaN and out-of-range values', () => {
    rejects(
      () => checkBatch(batchOf([{ ...MIXED[0]!, value: Number.NaN }]), NOW),
      'readings[0].value: engine_temp must be a number in [-60, 250], got NaN',
    );
    rejects(
      () => checkReading(reading({ ...MIXED[0]!, value: Number.POSITIVE_INFINITY }), NOW),
      'reading.value: engine_temp must be a number in [-60, 250], got Infinity',
    );
    // The binary encoder does not validate, so a broken agent can send this.
    rejects(
      () => decodeBatch(V, encodeBatch(batchOf([{ ...MIXED[0]!, value: 250.01 }])), NOW),
      'readings[0].value: engine_temp must be a number in [-60, 250], got 250.01',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ sensor: 'speed', value: -0.5 })]), NOW),
      'readings[0].value: speed must be a number in [0, 400], got -0.5',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ value: '90' })]), NOW),
      'readings[0].value: engine_temp must be a number in [-60, 250], got "90"',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ sensor: 'rpm', value: 20_000.01 })]), NOW),
      'readings[0].value: rpm must be a number in [0, 20000], got 20000.01',
    );
  });

  it('refuses ts before 2001 and accepts 2001-01-01 itself', () => {
    const before = Date.UTC(2000, 11, 31, 23, 59, 59, 999);
    rejects(
      () => decodeBatch(V, jsonBatch([good({ ts: before })]), NOW),
      `readings[0].ts: must be ms since epoch between 2001-01-01T00:00:00.000Z and a day ahead of now, got ${before}`,
    );
    assert.equal(decodeBatch(V, jsonBatch([good({ ts: MIN_TS })]), NOW).readings[0]!.ts, MIN_TS);
  });

  it('refuses ts more than a day ahead of now, and accepts exactly a day', () => {
    const limit = NOW + MAX_CLOCK_AHEAD_MS;
    rejects(
      () => decodeBatch(V, jsonBatch([good({ ts: limit + 1 })]), NOW),
      /^readings\[0\]\.ts: must be ms since epoch .* got 1717329600001$/,
    );
    assert.equal(decodeBatch(V, jsonBatch([good({ ts: limit })]), NOW).readings[0]!.ts, limit);
    rejects(() => decodeBatch(V, jsonBatch([good({ ts: T + 0.5 })]), NOW), /^readings\[0\]\.ts: .* got 1717243140000\.5$/);
  });

  it('refuses an unknown sensor, quality or clock', () => {
    rejects(
      () => decodeBatch(V, jsonBatch([good({ sensor: 'oil_temp' })]), NOW),
      /^readings\[0\]\.sensor: must be one of engine_temp, container_temp, speed, gps, rpm, engine_load, .*, got "oil_temp"$/,
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ quality: 'great' })]), NOW),
      'readings[0].quality: must be one of good, uncertain, bad, got "great"',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ clock: undefined })]), NOW),
      'readings[0].clock: must be one of synced, unsynced, got undefined',
    );
  });

  it('refuses gps without a position and a position on anything else', () => {
    rejects(
      () => decodeBatch(V, jsonBatch([good({ sensor: 'gps', value: 50 })]), NOW),
      'readings[0].position: gps readings need a position object',
    );
    rejects(
      () => decodeBatch(V, jsonBatch([good({ position: { lat: 1, lon: 2, heading: 3, fix: '3d' } })]), NOW),
      'readings[0].position: only gps readings carry a position',
    );
    const gps = (position: unknown) => jsonBatch([good({ sensor: 'gps', value: 50, position })]);
    rejects(
      () => decodeBatch(V, gps({ lat: 91, lon: 0, heading: 0, fix: '3d' }), NOW),
      'readings[0].position.lat: must be a number in [-90, 90], got 91',
    );
    rejects(
      () => decodeBatch(V, gps({ lat: 0, lon: -180.5, heading: 0, fix: '3d' }), NOW),
      'readings[0].position.lon: must be a number in [-180, 180], got -180.5',
    );
    rejects(
      () => decodeBatch(V, gps({ lat: 0, lon: 0, heading: 360.1, fix: '3d' }), NOW),
      'readings[0].position.heading: must be a number in [0, 360], got 360.1',
    );
    rejects(
      () => decodeBatch(V, gps({ lat: 0, lon: 0, heading: 0, fix: '4d' }), NOW),
      'readings[0].position.fix: must be one of none, 2d, 3d, got "4d"',
    );
  });
});

describe('ByteWriter', () => {
  it('refuses numbers a varint cannot carry instead of looping or overrunning (found by fuzzing)', () => {
    for (const n of [Infinity, -Infinity, NaN, -1, 0.5, 2 ** 53, 1e308])
      assert.throws(() => new ByteWriter().uvarint(n), RangeError, String(n));
    for (const n of [Infinity, -Infinity, NaN, 2 ** 53, -1e308]) assert.throws(() => new ByteWriter().svarint(n), RangeError, String(n));
    assert.throws(() => encodeBatch(batchOf([{ ...MIXED[0]!, value: 1e308 }])), RangeError);
  });
});

describe('decodeBatch under random mutation', () => {
  it('returns a valid batch or throws a ContractError, never anything else', () => {
    const rnd = new Random(20240601);
    const seeds = [
      encodeBatch(batchOf(MIXED)),
      encodeBatch(batchOf(MIXED), { compress: true }),
      encodeBatch(batchOf(TYPICAL)),
      encodeBatch(batchOf(TYPICAL), { compress: true }),
      encodeBatch(batchOf(TYPICAL), { encoding: 'json' }),
    ];
    const mutate = (src: Buffer): Buffer => {
      let b = Buffer.from(src);
      const edits = rnd.int(1, 3);
      for (let e = 0; e < edits; e++) {
        const at = rnd.int(0, Math.max(0, b.length - 1));
        switch (rnd.int(0, 4)) {
          case 0:
          case 1:
            if (b.length > 0) b[at] = b[at]! ^ (1 << rnd.int(0, 7));
            break;
          case 2:
            b = b.subarray(0, rnd.int(0, b.length));
            break;
          case 3:
            b = Buffer.concat([
              b.subarray(0, at),
              Buffer.from(Array.from({ length: rnd.int(1, 4) }, () => rnd.int(0, 255))),
              b.subarray(at),
            ]);
            break;
          case 4:
            b = Buffer.concat([b.subarray(0, at), b.subarray(at + rnd.int(1, 3))]);
            break;
        }
      }
      return b;
    };
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 5000; i++) {
      const payload = mutate(seeds[i % seeds.length]!);
      let batch: Batch;
      try {
        batch = decodeBatch(V, payload, NOW);
      } catch (err) {
        if (!(err instanceof ContractError)) {
          assert.fail(`mutation ${i} (${payload.toString('hex')}) threw ${String(err)}`);
        }
        rejected++;
        continue;
      }
      assert.doesNotThrow(() => checkBatch(batch, NOW), `mutation ${i} decoded to an invalid batch`);
      assert.ok(
        batch.readings.every((r) => r.vehicle === V),
        `mutation ${i} changed the vehicle`,
      );
      accepted++;
    }
    // Both outcomes must be exercised, or the loop proves little.
    assert.ok(accepted > 0 && rejected > 0, `accepted ${accepted}, rejected ${rejected}`);
  });
});

describe('parseTopic', () => {
  it('accepts every kind for a valid vehicle and inverts topics.*', () => {
    for (const kind of ['telemetry', 'status', 'alerts', 'rejected'] as const) {
      assert.deepEqual(parseTopic(topics[kind]('truck_7-A')), { vehicle: 'truck_7-A', kind });
    }
    assert.equal(topics.telemetry('x'), `${TOPIC_ROOT}/x/telemetry`);
    assert.deepEqual(parseTopic(`fleet/v1/${'a'.repeat(64)}/status`), { vehicle: 'a'.repeat(64), kind: 'status' });
  });

  it('rejects other roots, versions, shapes, vehicles and kinds', () => {
    for (const topic of [
      'fleet/v2/truck-1/telemetry',
      'fleet/truck-1/telemetry',
      'other/v1/truck-1/telemetry',
      'fleet/v1/truck-1/telemetry/extra',
      'fleet/v1/truck-1',
      '/fleet/v1/truck-1/telemetry',
      'fleet/v1//telemetry',
      'fleet/v1/+/status',
      'fleet/v1/#',
      'fleet/v1/truck 1/telemetry',
      'fleet/v1/truck.1/telemetry',
      `fleet/v1/${'a'.repeat(65)}/telemetry`,
      'fleet/v1/truck-1/commands',
      'fleet/v1/truck-1/Telemetry',
      '',
    ]) {
      assert.equal(parseTopic(topic), undefined, topic);
    }
  });
});

describe('parseAlert', () => {
  const episodeStart = T - 30_000;
  const alert: Alert = {
    id: alertId(V, 'engine-overheat', episodeStart),
    vehicle: V,
    rule: 'engine-overheat',
    severity: 'critical',
    sensor: 'engine_temp',
    episodeStart,
    windowStart: episodeStart + 10_000,
    windowEnd: episodeStart + 20_000,
    observed: 112.5,
    expected: 105,
    message: 'engine_temp mean 112.5 above 105',
    live: true,
    raisedAt: NOW,
    closedAt: NOW - 20,
  };

  it('builds the id as vehicle.rule.episodeStart', () => {
    assert.equal(alertId('t-1', 'cargo-deviation', 1717243140000), 't-1.cargo-deviation.1717243140000');
  });

  it('accepts a valid alert from a string or a Buffer', () => {
    assert.deepEqual(parseAlert(JSON.stringify(alert)), alert);
    assert.deepEqual(parseAlert(Buffer.from(JSON.stringify(alert))), alert);
    assert.deepEqual(parseAlert(JSON.stringify({ ...alert, live: false, observed: -5 })), { ...alert, live: false, observed: -5 });
  });

  it('refuses an id that is not vehicle.rule.episodeStart', () => {
    const wrong = (over: Partial<Alert>) => JSON.stringify({ ...alert, ...over });
    rejects(() => parseAlert(wrong({ id: 'whatever' })), `alert.id: "whatever" is not ${V}.engine-overheat.${episodeStart}`);
    rejects(
      () => parseAlert(wrong({ episodeStart: episodeStart + 10_000 })),
      /^alert\.id: .* is not truck-7\.engine-overheat\.1717243120000$/,
    );
    rejects(() => parseAlert(wrong({ rule: 'cargo-deviation' })), /^alert\.id: /);
    rejects(() => parseAlert(wrong({ vehicle: 'truck-8' })), /^alert\.id: /);
  });

  it('refuses malformed alerts, naming the field', () => {
    const without = (key: keyof Alert) => {
      const copy: Record<string, unknown> = { ...alert };
      delete copy[key];
      return JSON.stringify(copy);
    };
    rejects(() => parseAlert('{"id":'), /^alert is not valid JSON: /);
    rejects(() => parseAlert('null'), 'alert must be a JSON object');
    rejects(() => parseAlert('7'), 'alert must be a JSON object');
    rejects(() => parseAlert(without('vehicle')), /^alert\.vehicle: must be 1-64 characters/);
    rejects(() => parseAlert(JSON.stringify({ ...alert, rule: '' })), 'alert.rule: must be a name, got ""');
    rejects(
      () => parseAlert(JSON.stringify({ ...alert, severity: 'fatal' })),
      'alert.severity: must be one of info, warning, critical, got "fatal"',
    );
    rejects(() => parseAlert(without('closedAt')), 'alert.closedAt: must be a number in [0, 9007199254740991], got undefined');
    rejects(() => parseAlert(JSON.stringify({ ...alert, windowStart: -1 })), /^alert\.windowStart: must be a number/);
    rejects(() => parseAlert(without('observed')), /^alert\.observed: must be a number/);
    rejects(() => parseAlert(JSON.stringify({ ...alert, live: 'yes' })), 'alert.live: must be true or false, got "yes"');
  });
});
