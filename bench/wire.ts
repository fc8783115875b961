/**
 * Wire cost: bytes per reading on the MQTT link, for the agent's binary batches at 1, 10 and
 * 100 readings per publish, with and without DEFLATE, beside the JSON form of the same
 * readings (the peer). Counted is the whole MQTT 3.1.1 PUBLISH packet at QoS 1: fixed header,
 * remaining length, topic, packet id and payload (the broker's 4-byte PUBACK is not).
 * Readings come from the truck model at 10 readings/s (every sensor at 2 Hz), as a truck sends them.
 */
import { deflateRawSync } from 'node:zlib';
import { encodeBatch } from '../shared/contract/codec.js';
import { topics } from '../shared/contract/topics.js';
import { emit, round, runPart, truckReadings } from './support.js';

const USAGE = `Usage: node dist/bench/wire.js [--quick] [--help]

Bytes per reading on the MQTT link (PUBLISH packet, QoS 1) for telemetry batches of 1, 10
and 100 readings, binary with and without DEFLATE, beside JSON. One JSON line per figure.
`;

const VEHICLE = 'truck-0001';
const BATCH_SIZES = [1, 10, 100] as const;
const FLOOR_AT_BATCH_10 = 24;

/** MQTT 3.1.1 PUBLISH, QoS 1: 1-byte header, remaining length (1-4 bytes), topic (2 + n), packet id (2). */
export function publishPacketBytes(topic: string, payloadBytes: number): number {
  const remaining = 2 + Buffer.byteLength(topic) + 2 + payloadBytes;
  const lengthBytes = remaining < 128 ? 1 : remaining < 16_384 ? 2 : remaining < 2_097_152 ? 3 : 4;
  return 1 + lengthBytes + remaining;
}

runPart(
  'wire',
  USAGE,
  () => 60_000,
  async (o, log) => {
    const readings = truckReadings(VEHICLE, o.quick ? 10_000 : 100_000, Date.UTC(2026, 10, 2, 8));
    const topic = topics.telemetry(VEHICLE);
    log(`${readings.length.toLocaleString('en')} readings of one simulated truck at 10 readings/s, topic ${topic}`);
    for (const n of BATCH_SIZES) {
      let binary = 0;
      let deflated = 0;
      let json = 0;
      let jsonDeflated = 0;
      let batches = 0;
      for (let i = 0; i + n <= readings.length; i += n) {
        const rs = readings.slice(i, i + n);
        const batch = { vehicle: VEHICLE, headTs: rs.at(-1)!.ts, readings: rs };
        const jsonPayload = encodeBatch(batch, { encoding: 'json' });
        binary += publishPacketBytes(topic, encodeBatch(batch).length);
        deflated += publishPacketBytes(topic, encodeBatch(batch, { compress: true }).length);
        json += publishPacketBytes(topic, jsonPayload.length);
        jsonDeflated += publishPacketBytes(topic, deflateRawSync(jsonPayload).length);
        batches++;
      }
      const per = (bytes: number) => round(bytes / (batches * n), 1);
      const floor = n === 10 ? { floor: FLOOR_AT_BATCH_10, floorOp: '<=' as const } : {};
      const note = `${batches} batches; PUBLISH packet incl. ${topic.length}-byte topic`;
      emit('wire', {
        figure: `bytes/reading, batch ${n}, binary`,
        value: per(binary),
        unit: 'B',
        ...floor,
        peer: 'JSON',
        peerValue: per(json),
        note,
      });
      emit('wire', {
        figure: `bytes/reading, batch ${n}, binary + deflate`,
        value: per(deflated),
        unit: 'B',
        ...floor,
        peer: 'JSON + deflate',
        peerValue: per(jsonDeflated),
        note,
      });
    }
  },
);
