import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import type { Batch } from '../../../shared/contract/batch.js';
import { encodeBatch } from '../../../shared/contract/codec.js';
import { ContractError } from '../../../shared/contract/errors.js';
import {
  decodeStreamRecord,
  encodeStreamRecord,
  kafkaCarrier,
  STREAM_RECORD_MAGIC,
  STREAM_RECORD_VERSION,
} from '../../../shared/contract/stream-record.js';

const AT = Date.UTC(2026, 0, 5, 10);
const V = 'truck-7';
const BATCH: Batch = {
  vehicle: V,
  headTs: AT - 100,
  readings: [
    { vehicle: V, seq: 41, ts: AT - 2000, clock: 'synced', sensor: 'engine_temp', value: 91.25, quality: 'good' },
    {
      vehicle: V,
      seq: 43,
      ts: AT - 1000,
      clock: 'unsynced',
      sensor: 'gps',
      value: 80,
      quality: 'uncertain',
      position: { lat: 48.1, lon: 11.5, heading: 90, fix: '3d' },
    },
    { vehicle: V, seq: 44, ts: AT - 500, clock: 'synced', sensor: 'fuel_level', value: 55.5, quality: 'good' },
  ],
};

/** A Kinesis record as the gateway wrote it before records were framed. */
function kinesisPrefixed(receivedAt: number, batch: Batch): Buffer {
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64BE(BigInt(receivedAt));
  return Buffer.concat([prefix, encodeBatch(batch)]);
}

describe('stream record', () => {
  it('carries the vehicle, the receive time and the batch, framed with its magic and version', () => {
    const bytes = encodeStreamRecord({ vehicle: V, receivedAt: AT, batch: BATCH });
    assert.deepEqual([bytes[0], bytes[1]], [STREAM_RECORD_MAGIC, STREAM_RECORD_VERSION]);
    // The carrier's time is for records that have none: a framed record's own time wins.
    assert.deepEqual(decodeStreamRecord(bytes, { key: V, receivedAt: 1 }), { vehicle: V, receivedAt: AT, batch: BATCH });
  });

  it('frames a batch already encoded as it is, to the same bytes as encoding it', () => {
    const framed = encodeStreamRecord({ vehicle: V, receivedAt: AT, batch: BATCH }, encodeBatch(BATCH));
    assert.deepEqual(framed, encodeStreamRecord({ vehicle: V, receivedAt: AT, batch: BATCH }));
  });

  it('decodes from a view into a larger buffer, as the AWS SDK hands out record data', () => {
    const bytes = encodeStreamRecord({ vehicle: V, receivedAt: AT, batch: BATCH });
    const larger = new Uint8Array(bytes.length + 20);
    larger.set(bytes, 10);
    assert.deepEqual(decodeStreamRecord(larger.subarray(10, 10 + bytes.length), { key: V, receivedAt: 1 }).batch, BATCH);
  });

  describe('records written by earlier releases', () => {
    it('a bare binary batch (the embedded log and Kafka): the receive time is the one the stream kept beside it', () => {
      assert.deepEqual(decodeStreamRecord(encodeBatch(BATCH), { key: V, receivedAt: AT }), { vehicle: V, receivedAt: AT, batch: BATCH });
    });

    it("a bare JSON batch, as an IoT rule routes a third-party device's payload", () => {
      const json = encodeBatch(BATCH, { encoding: 'json' });
      assert.deepEqual(decodeStreamRecord(json, { key: V, receivedAt: AT }), { vehicle: V, receivedAt: AT, batch: BATCH });
    });

    it('Kinesis: an 8-byte big-endian receive time, then the batch', () => {
      assert.deepEqual(decodeStreamRecord(kinesisPrefixed(AT, BATCH), { key: V, receivedAt: 1 }), {
        vehicle: V,
        receivedAt: AT,
        batch: BATCH,
      });
    });

    it('Kafka: the receive time from the receivedAt header, else from the record timestamp', () => {
      assert.deepEqual(kafkaCarrier(V, { receivedAt: Buffer.from(String(AT)) }, String(AT + 7)), { key: V, receivedAt: AT });
      assert.deepEqual(kafkaCarrier(V, {}, String(AT + 7)), { key: V, receivedAt: AT + 7 });
      assert.deepEqual(kafkaCarrier(V, undefined, String(AT + 7)), { key: V, receivedAt: AT + 7 });
      assert.equal(decodeStreamRecord(encodeBatch(BATCH), kafkaCarrier(V, { receivedAt: String(AT) }, '0')).receivedAt, AT);
    });
  });

  describe('refuses, naming what is wrong', () => {
    const framed = encodeStreamRecord({ vehicle: V, receivedAt: AT, batch: BATCH });
    const refusal = (data: Uint8Array, key = V) => {
      try {
        decodeStreamRecord(data, { key, receivedAt: AT });
      } catch (err) {
        assert.ok(err instanceof ContractError, String(err));
        return err.message;
      }
      assert.fail('decoded');
    };

    it('an empty record', () => assert.match(refusal(Buffer.alloc(0)), /stream record is empty/));

    it('a version this release does not know', () => {
      const newer = Buffer.from(framed);
      newer[1] = STREAM_RECORD_VERSION + 1;
      assert.match(refusal(newer), /stream record version 2 is not one this release reads \(1\)/);
    });

    it("a record stored under another vehicle's key", () =>
      assert.match(refusal(framed, 'truck-8'), /record\.vehicle: "truck-7" is stored under the key "truck-8"/));

    it('a record cut short', () => {
      assert.match(refusal(framed.subarray(0, 5)), /payload ends inside record\.receivedAt/);
      assert.match(refusal(framed.subarray(0, 12)), /payload ends inside record\.vehicle: 7 bytes announced/);
      assert.match(refusal(framed.subarray(0, framed.length - 3)), /payload ends inside readings\[2\]/);
    });

    it('a Kinesis record too short for its receive time', () =>
      assert.match(refusal(Buffer.alloc(8)), /Kinesis record of 8 bytes is shorter than its header/));

    it('a bare payload that is no batch', () =>
      assert.match(refusal(Buffer.from('not a batch')), /payload is neither binary \(first byte 0xfb\) nor valid JSON/));
  });
});
