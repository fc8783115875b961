import assert from 'node:assert/strict';
import { deflateRawSync } from 'node:zlib';
import { describe, it } from 'vitest';
import { checkBatch, type Batch } from '../../shared/contract/batch.js';
import { decodeBatch, encodeBatch, quantize } from '../../shared/contract/codec.js';
import { ContractError } from '../../shared/contract/errors.js';
import { cases, FuzzTally, fuzzRandom, Mutator, reasonOf, seedBatch } from './mutators.js';

const VEHICLE = 'truck-fuzz';
/** Fixed, so that a replayed seed decodes against the same "now" as the run that failed. */
const NOW = Date.UTC(2025, 5, 1);
/** Words of the JSON form, for the byte-level mutations of JSON text. */
const JSON_WORDS = [
  '"readings"',
  '"headTs"',
  '"seq"',
  '"ts"',
  '"value"',
  '"position"',
  '"gps"',
  '"bad"',
  '"unsynced"',
  '"3d"',
  '"vehicle"',
];

/**
 * What a decode must do with any payload: give a batch that passes validation and survives
 * the binary encoding the gateway writes to the stream, or throw a ContractError with a
 * message. Returns the refusal's reason; anything thrown from here is a crash.
 */
function decodeCase(payload: Buffer): string | undefined {
  let batch: Batch;
  try {
    batch = decodeBatch(VEHICLE, payload, NOW);
  } catch (err) {
    if (err instanceof ContractError) return reasonOf(err.message);
    throw err;
  }
  checkBatch(batch, NOW);
  const again = decodeBatch(VEHICLE, encodeBatch(batch), NOW);
  assert.deepEqual(wireForm(again), wireForm(batch), 'an accepted batch changes through the binary encoding');
  return undefined;
}

/** A batch as the binary encoding carries it: values in hundredths, coordinates in 1e-7, no extra fields. */
function wireForm(b: Batch) {
  // `+ 0` turns -0 into 0: the encoding has one zero, and -0.001 °C is no reading of its own.
  const round = (v: number, scale: number) => Math.round(v * scale) / scale + 0;
  return {
    headTs: b.headTs,
    readings: b.readings.map((r) => ({
      vehicle: r.vehicle,
      seq: r.seq,
      ts: r.ts,
      clock: r.clock,
      sensor: r.sensor,
      value: quantize(r.value) + 0,
      quality: r.quality,
      position: r.position && {
        lat: round(r.position.lat, 1e7),
        lon: round(r.position.lon, 1e7),
        heading: round(r.position.heading, 10),
        fix: r.position.fix,
      },
    })),
  };
}

describe('fuzz: telemetry decoding (decodeBatch, checkBatch)', () => {
  it('binary batches, plain and deflated, mutated as bytes and as fields: a valid batch or a ContractError', () => {
    const rnd = fuzzRandom('contract binary');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('telemetry decode (binary)');
    const corpus: Buffer[] = [];
    for (let i = 0, n = cases(40_000); i < n; i++) {
      const batch = seedBatch(rnd, VEHICLE, NOW, m.chance(0.1) ? 200 : 12);
      const compress = m.chance(0.4);
      let payload: Buffer;
      const how = rnd.int(0, 9);
      if (how < 6) {
        // Bytes of a whole payload: header, varints, and (deflated) the compressed stream.
        payload = m.mutate(encodeBatch(batch, { compress }), { splice: corpus });
      } else if (how < 8) {
        // The body mutated behind a valid header and valid compression, so the reader sees it.
        const body = m.mutate(encodeBatch(batch).subarray(2), { splice: corpus });
        payload = Buffer.concat([Buffer.from([0xfb, compress ? 0x11 : 0x10]), compress ? deflateRawSync(body) : body]);
      } else {
        // Fields out of their ranges, encoded faithfully: what a buggy agent would send. Through
        // JSON first, as the encoder is never handed non-finite numbers (it loops on Infinity).
        const doc = JSON.parse(JSON.stringify(m.mutateJson(batch))) as Batch;
        try {
          payload = encodeBatch(doc, { compress });
        } catch {
          payload = m.garbage(64);
        }
      }
      if (corpus.length < 64) corpus.push(payload);
      else corpus[rnd.int(0, 63)] = payload;
      tally.check(payload, () => decodeCase(payload));
    }
    // The mutations must reach past the header into the readings, or this fuzzes nothing.
    assert.ok(
      Object.keys(tally.reasons).some((r) => r.startsWith('readings[N]')),
      JSON.stringify(tally.reasons),
    );
    assert.ok(tally.accepted > 0, 'some mutations still decode');
    tally.finish({ minCases: cases(40_000) });
  });

  it('JSON batches mutated as documents and as text: a valid batch or a ContractError', () => {
    const rnd = fuzzRandom('contract json');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('telemetry decode (JSON)');
    for (let i = 0, n = cases(30_000); i < n; i++) {
      const batch = seedBatch(rnd, VEHICLE, NOW);
      const doc = JSON.parse(encodeBatch(batch, { encoding: 'json' }).toString()) as unknown;
      const payload = m.chance(0.8) ? m.mutateJsonText(doc) : m.mutate(Buffer.from(JSON.stringify(doc)), { dictionary: JSON_WORDS });
      tally.check(payload, () => decodeCase(payload));
    }
    assert.ok(
      Object.keys(tally.reasons).some((r) => r.startsWith('readings[N]')),
      JSON.stringify(tally.reasons),
    );
    assert.ok(tally.accepted > 0, 'some mutations still decode');
    tally.finish({ minCases: cases(30_000) });
  });

  it('random garbage, with and without the binary magic', () => {
    const rnd = fuzzRandom('contract garbage');
    const m = new Mutator(rnd);
    const tally = new FuzzTally('telemetry decode (garbage)');
    for (let i = 0, n = cases(10_000); i < n; i++) {
      const bytes = m.garbage(m.chance(0.05) ? 4096 : 64);
      const payload = m.chance(0.5) ? Buffer.concat([Buffer.from([0xfb, m.pick([0x10, 0x11, rnd.int(0, 255)])]), bytes]) : bytes;
      tally.check(payload, () => decodeCase(payload));
    }
    tally.finish({ minCases: cases(10_000) });
  });
});
