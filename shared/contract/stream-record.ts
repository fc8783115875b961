import type { Batch } from './batch.js';
import { decodeBatch, encodeBatch } from './codec.js';
import { ContractError } from './errors.js';
import { show } from './validate.js';
import { ByteReader, ByteWriter } from './varint.js';

/**
 * One accepted telemetry batch as `fleet.telemetry` carries it, on every stream alike (the
 * embedded log, Kafka, Kinesis). The gateway encodes it once; sinks move its bytes under the
 * vehicle as key without looking inside; every source decodes it here. The layout is in
 * docs/CONTRACT.md ("Streams").
 */
export interface StreamRecord {
  vehicle: string;
  /** When the gateway accepted the batch (ms since the epoch): the batch's "now" downstream. */
  receivedAt: number;
  batch: Batch;
}

/**
 * First byte of a framed record. A record written before the framing starts with a telemetry
 * payload's own first byte (0xFB binary, JSON text) or, on Kinesis, with the zero byte of an
 * 8-byte receive time: never this.
 */
export const STREAM_RECORD_MAGIC = 0xfa;
export const STREAM_RECORD_VERSION = 1;
/** Kinesis records of earlier releases: an 8-byte big-endian receive time, then the batch. */
const KINESIS_PREFIX_BYTES = 8;

/**
 * `encodedBatch` is the batch already in the binary encoding, when the caller has it (the
 * vehicle's own payload, uncompressed and accepted as it is): the record then only frames it.
 */
export function encodeStreamRecord(r: StreamRecord, encodedBatch: Buffer = encodeBatch(r.batch)): Buffer {
  const w = new ByteWriter();
  w.byte(STREAM_RECORD_MAGIC);
  w.byte(STREAM_RECORD_VERSION);
  w.uvarint(r.receivedAt);
  const vehicle = Buffer.from(r.vehicle, 'utf8');
  w.uvarint(vehicle.length);
  w.append(vehicle);
  return Buffer.concat([w.bytes(), encodedBatch]);
}

/**
 * What the transport says about a record besides its bytes. Only records written before the
 * framing need the time: the stream kept it beside them.
 */
export interface Carrier {
  /** Kafka's key, Kinesis's partition key, the embedded log's vehicle column. */
  key: string;
  /**
   * The transport's time for the record: the embedded log's `received_at` column, a Kafka
   * record's `receivedAt` header (see kafkaCarrier), a Kinesis record's arrival (for a bare
   * payload an IoT rule routed there; the gateway's own earlier records carry theirs).
   */
  receivedAt: number;
}

/** A Kafka record's carrier: records of earlier releases had the receive time in a `receivedAt` header (decimal ms), also their timestamp. */
export function kafkaCarrier(key: string, headers: Record<string, unknown> | undefined, timestamp: string): Carrier {
  const header = Number(String(headers?.receivedAt));
  return { key, receivedAt: Number.isFinite(header) ? header : Number(timestamp) };
}

/**
 * Reads a record in any form a release has written: framed (this release on), a Kinesis
 * record with the 8-byte receive time in front, or a bare telemetry payload. The batch was
 * validated on the way in; its receive time stands for "now", so old records still decode.
 * Throws ContractError naming what is wrong.
 */
export function decodeStreamRecord(data: Uint8Array, carrier: Carrier): StreamRecord {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length === 0) throw new ContractError('stream record is empty');
  if (buf[0] === STREAM_RECORD_MAGIC) return decodeFramed(buf, carrier.key);
  if (buf[0] === 0) return decodeKinesisPrefixed(buf, carrier.key);
  return { vehicle: carrier.key, receivedAt: carrier.receivedAt, batch: decodeBatch(carrier.key, buf, carrier.receivedAt) };
}

function decodeFramed(buf: Buffer, key: string): StreamRecord {
  const rd = new ByteReader(buf);
  rd.byte('the record magic');
  const version = rd.byte('the record version');
  if (version !== STREAM_RECORD_VERSION) {
    throw new ContractError(
      `stream record version ${version} is not one this release reads (${STREAM_RECORD_VERSION}); upgrade the consumer`,
    );
  }
  const receivedAt = rd.uvarint('record.receivedAt');
  const vehicle = rd.take(rd.uvarint('record.vehicle length'), 'record.vehicle').toString('utf8');
  // The key places the record (partition, shard): one that disagrees would break the vehicle's order.
  if (vehicle !== key) throw new ContractError(`record.vehicle: ${show(vehicle)} is stored under the key ${show(key)}`);
  return { vehicle, receivedAt, batch: decodeBatch(vehicle, rd.rest(), receivedAt) };
}

function decodeKinesisPrefixed(buf: Buffer, key: string): StreamRecord {
  if (buf.length <= KINESIS_PREFIX_BYTES) throw new ContractError(`Kinesis record of ${buf.length} bytes is shorter than its header`);
  const receivedAt = Number(buf.readBigUInt64BE(0));
  return { vehicle: key, receivedAt, batch: decodeBatch(key, buf.subarray(KINESIS_PREFIX_BYTES), receivedAt) };
}
