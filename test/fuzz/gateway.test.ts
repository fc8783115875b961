import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { decodeBatch, encodeBatch } from '../../shared/contract/codec.js';
import { ContractError } from '../../shared/contract/errors.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { tempDir, waitFor } from '../support/harness.js';
import { cases, FuzzTally, fuzzRandom, Mutator, seedBatch } from './mutators.js';

const MAX_PAYLOAD = 8192;
const CLIENTS = 4;
/** Publishes in flight per client: enough to share sink commits, few enough to keep PUBACK order readable. */
const WINDOW = 32;

interface Notice {
  reason: string;
  detail: string;
  topic: string;
}

/** What the gateway must answer to one publish, worked out from the contract alone. */
type Expected = { accepted: true; readings: number; partly?: 'clock_ahead' } | { accepted: false; reason: string; detail?: string };

/** docs/CONTRACT.md: the gateway's default margin for event times ahead of its clock. */
const CLOCK_AHEAD_MS = 300_000;

function expectTelemetry(vehicle: string, payload: Buffer): Expected {
  if (payload.length > MAX_PAYLOAD) return { accepted: false, reason: 'oversize' };
  try {
    const batch = decodeBatch(vehicle, payload);
    // Readings stamped beyond the margin are split off and refused; the rest go on.
    const limit = Date.now() + CLOCK_AHEAD_MS;
    const inTime = batch.readings.filter((r) => r.ts <= limit).length;
    const ahead = inTime < batch.readings.length || batch.headTs > limit;
    if (!ahead) return { accepted: true, readings: inTime };
    return inTime === 0 ? { accepted: false, reason: 'clock_ahead' } : { accepted: true, readings: inTime, partly: 'clock_ahead' };
  } catch (err) {
    if (!(err instanceof ContractError)) throw err;
    return { accepted: false, reason: 'malformed', detail: err.message };
  }
}

/**
 * docs/CONTRACT.md: a status is a JSON object of at most 4096 bytes with a boolean `online` and
 * `at`, whole ms between 2001 and the gateway's clock plus its margin (5 minutes by default).
 */
function expectStatus(payload: Buffer): Expected {
  if (payload.length > MAX_PAYLOAD) return { accepted: false, reason: 'oversize' };
  if (payload.length > 4096) return { accepted: false, reason: 'bad_status' };
  let doc: unknown;
  try {
    doc = JSON.parse(payload.toString());
  } catch {
    return { accepted: false, reason: 'bad_status' };
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return { accepted: false, reason: 'bad_status' };
  const { online, at } = doc as { online?: unknown; at?: unknown };
  const plausible = typeof at === 'number' && Number.isInteger(at) && at >= Date.UTC(2001, 0, 1) && at <= Date.now() + 300_000;
  return typeof online === 'boolean' && plausible ? { accepted: true, readings: 0 } : { accepted: false, reason: 'bad_status' };
}

async function metric(cloud: Cloud, name: string, reason?: string): Promise<number> {
  const m = await cloud.gateway.registry.getSingleMetric(name)!.get();
  return m.values.filter((v) => reason === undefined || v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
}

/** MQTT 3.1.1 packets by hand, so the raw-socket cases can mutate every byte of them. */
function packet(type: number, body: Buffer): Buffer {
  const len: number[] = [];
  let n = body.length;
  do {
    len.push((n % 128) | (n >= 128 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...len]), body]);
}
const str = (s: string) => {
  const b = Buffer.from(s);
  return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
};
const connectPacket = (clientId: string) => packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 60]), str(clientId)]));
const publishPacket = (topic: string, id: number, payload: Buffer) =>
  packet(0x32, Buffer.concat([str(topic), Buffer.from([id >> 8, id & 0xff]), payload]));
const MQTT_WORDS = [
  'MQTT',
  'MQIsdp',
  '\x10',
  '\x30',
  '\x32',
  '\x34',
  '\x82',
  '\xc0',
  '\xe0',
  '\xff\xff\xff\x7f',
  'fleet/v1/',
  '/telemetry',
  '/status',
  '#',
  '+',
  'service',
];

/** What the gateway did with one raw connection's bytes: PUBACK (accepted) or why not. */
function rawCase(port: number, chunks: Buffer[]): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    let answer = Buffer.alloc(0);
    const outcome = () => {
      const connack = answer[0] === 0x20 && answer.length >= 4 ? answer[3]! : undefined;
      if (answer.includes(0x40) && connack === 0) return undefined;
      if (connack !== undefined && connack !== 0) return `CONNACK refused (return code ${connack})`;
      return socket.destroyed || socket.readableEnded ? 'connection closed by the gateway' : 'waiting for the rest of a packet';
    };
    const timer = setTimeout(() => {
      const r = outcome();
      socket.destroy();
      resolve(r);
    }, 300);
    socket.on('data', (d: Buffer) => (answer = Buffer.concat([answer, d])));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset is the gateway closing on us; anything else is the test's own trouble.
      if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(outcome());
    });
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
  });
}

describe('fuzz: the gateway over MQTT', () => {
  const dir = tempDir('fleet-fuzz-gateway-');
  const rnd = fuzzRandom('gateway');
  const m = new Mutator(rnd);
  let cloud: Cloud;
  const clients: MqttClient[] = [];
  const notices = new Map<string, Notice[]>();

  beforeAll(async () => {
    cloud = await new Cloud({ dir, gateway: { maxPayloadBytes: MAX_PAYLOAD } }).start();
    for (let i = 0; i < CLIENTS; i++) {
      const vehicle = `fuzz-${i}`;
      const c = await mqtt.connectAsync(cloud.mqttUrl, { clientId: vehicle, reconnectPeriod: 0 });
      notices.set(vehicle, []);
      c.on('message', (_t, p) => notices.get(vehicle)!.push(JSON.parse(p.toString()) as Notice));
      await c.subscribeAsync(topics.rejected(vehicle), { qos: 1 });
      clients.push(c);
    }
  });

  afterAll(async () => {
    for (const c of clients) await c.endAsync(true);
    await cloud.stop();
  });

  /** A payload for `kind`: a mutated valid one mostly, sometimes garbage or more than the limit. */
  function payloadFor(vehicle: string, kind: 'telemetry' | 'status'): Buffer {
    if (m.chance(0.03)) return m.chance(0.5) ? m.garbage(MAX_PAYLOAD * 2) : Buffer.alloc(MAX_PAYLOAD + rnd.int(1, 4096), 0x7b);
    if (m.chance(0.07)) return m.garbage(256);
    if (kind === 'status') {
      const status = {
        online: true,
        at: Date.now(),
        agentVersion: '0.1.0',
        buffered: rnd.int(0, 1e6),
        evicted: 0,
        sensors: { gps0: 'ok', obd0: 'degraded' },
      };
      return m.chance(0.8) ? m.mutateJsonText(status) : Buffer.from(JSON.stringify(status));
    }
    const batch = seedBatch(rnd, vehicle, Date.now());
    if (m.chance(0.3)) return m.mutateJsonText(JSON.parse(encodeBatch(batch, { encoding: 'json' }).toString()));
    const valid = encodeBatch(batch, { compress: m.chance(0.4) });
    return m.chance(0.85) ? m.mutate(valid) : valid;
  }

  it('answers every mutated telemetry and status publish with a PUBACK, and every refusal with its reason', async () => {
    const tally = new FuzzTally('gateway MQTT payload');
    const metricsBefore = {
      batches: await metric(cloud, 'fleet_gateway_batches_accepted_total'),
      readings: await metric(cloud, 'fleet_gateway_readings_accepted_total'),
    };
    const expectedNotices = new Map<string, Notice[]>([...notices.keys()].map((v) => [v, []]));
    const refusedByReason: Record<string, number> = {};
    let acceptedBatches = 0;
    let acceptedReadings = 0;
    const perClient = Math.ceil(cases(3000) / CLIENTS);

    // All drawn before anything is sent, so a seed replays the same cases whatever the timing.
    const planned = clients.map((_, i) => {
      const vehicle = `fuzz-${i}`;
      return Array.from({ length: perClient }, () => {
        const kind = m.chance(0.8) ? ('telemetry' as const) : ('status' as const);
        const payload = payloadFor(vehicle, kind);
        const topic = kind === 'telemetry' ? topics.telemetry(vehicle) : topics.status(vehicle);
        return { vehicle, kind, topic, payload, retain: kind === 'status' && m.chance(0.5) };
      });
    });
    /**
     * The answer is worked out as the case is sent, not as it is drawn: how far ahead of the
     * gateway's clock a time may be depends on when it arrives, and sending takes seconds.
     */
    const expect = ({ vehicle, kind, topic, payload }: (typeof planned)[number][number]): Expected => {
      const expected = kind === 'telemetry' ? expectTelemetry(vehicle, payload) : expectStatus(payload);
      if (expected.accepted) {
        if (kind === 'telemetry') acceptedBatches++;
        acceptedReadings += expected.readings;
        if (expected.partly) {
          refusedByReason[expected.partly] = (refusedByReason[expected.partly] ?? 0) + 1;
          expectedNotices.get(vehicle)!.push({ reason: expected.partly, detail: '', topic });
        }
      } else {
        refusedByReason[expected.reason] = (refusedByReason[expected.reason] ?? 0) + 1;
        expectedNotices.get(vehicle)!.push({ reason: expected.reason, detail: expected.detail ?? '', topic });
      }
      return expected;
    };
    await Promise.all(
      clients.map(async (client, i) => {
        const plan = planned[i]!;
        for (let sent = 0; sent < plan.length; sent += WINDOW) {
          await Promise.all(
            plan.slice(sent, sent + WINDOW).map((item) =>
              // A QoS 1 publish counts once its PUBACK is in: the gateway answered it.
              tally.checkAsync(item.payload, async () => {
                const expected = expect(item);
                await client.publishAsync(item.topic, item.payload, { qos: 1, retain: item.retain });
                return expected.accepted ? undefined : expected.reason;
              }),
            ),
          );
        }
      }),
    );

    // Every refusal reached its vehicle as a notice naming the reason, with the decoder's own words.
    for (const [vehicle, expected] of expectedNotices) {
      const got = notices.get(vehicle)!;
      await waitFor(`${expected.length} rejection notices to ${vehicle}`, () => got.length >= expected.length, 20_000);
      assert.equal(got.length, expected.length, `${vehicle}: one notice per refusal`);
      for (const n of got) assert.ok(n.reason && n.detail, `notice without a reason: ${JSON.stringify(n)}`);
      const key = (n: Notice) => `${n.topic} ${n.reason} ${n.detail}`;
      // The oracle knows the decoder's message for malformed telemetry; for the rest, reason and topic.
      const shown = (n: Notice) => (n.reason === 'malformed' ? key(n) : `${n.topic} ${n.reason}`);
      assert.deepEqual(got.map(shown).sort(), expected.map(shown).sort(), `${vehicle}: notices differ from the contract's answers`);
    }
    // Counted under each reason, and accepted + refused = sent.
    for (const [reason, n] of Object.entries(refusedByReason)) {
      assert.equal(await metric(cloud, 'fleet_gateway_refused_total', reason), n, `fleet_gateway_refused_total{reason="${reason}"}`);
    }
    const refused = Object.values(refusedByReason).reduce((a, b) => a + b, 0);
    assert.equal(await metric(cloud, 'fleet_gateway_refused_total'), refused, 'no refusal under another reason');
    assert.equal((await metric(cloud, 'fleet_gateway_batches_accepted_total')) - metricsBefore.batches, acceptedBatches);
    assert.equal((await metric(cloud, 'fleet_gateway_readings_accepted_total')) - metricsBefore.readings, acceptedReadings);
    assert.equal(tally.accepted + tally.rejected, perClient * CLIENTS);
    const db = new Database(join(dir, 'gateway', 'dead-letters.db'), { readonly: true });
    const deadLetters = db.prepare("SELECT COUNT(*) AS n FROM dead_letters WHERE reason <> ''").get() as { n: number };
    db.close();
    assert.equal(deadLetters.n, refused, 'every refused payload dead-lettered with its reason');
    assert.ok(tally.accepted > 0 && refusedByReason.malformed! > 0 && refusedByReason.bad_status! > 0, JSON.stringify(refusedByReason));
    for (const c of clients) assert.equal(c.connected, true, 'bad data never costs a vehicle its connection');
    tally.finish({ minCases: cases(3000) });
  });

  it('survives raw garbage and mutated MQTT packets on its TCP port, then still serves', async () => {
    const tally = new FuzzTally('gateway MQTT packets (raw TCP)');
    const port = Number(new URL(cloud.mqttUrl).port);
    const n = cases(300);
    const planned = Array.from({ length: n }, (_, i) => {
      const vehicle = `raw-${i}`;
      const valid = Buffer.concat([
        connectPacket(vehicle),
        publishPacket(topics.telemetry(vehicle), 1, encodeBatch(seedBatch(rnd, vehicle, Date.now()))),
      ]);
      const bytes = m.chance(0.15) ? m.garbage(512) : m.mutate(valid, { dictionary: MQTT_WORDS });
      return { bytes, chunks: m.chunks(bytes) };
    });
    for (let i = 0; i < n; i += 25) {
      await Promise.all(planned.slice(i, i + 25).map(({ bytes, chunks }) => tally.checkAsync(bytes, () => rawCase(port, chunks))));
    }

    // The gateway still takes a valid batch from a new client, acknowledges it and stores it.
    const control = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'control-1', reconnectPeriod: 0 });
    const reading = {
      vehicle: 'control-1',
      seq: 1,
      ts: Date.now(),
      clock: 'synced',
      sensor: 'engine_temp',
      value: 90,
      quality: 'good',
    } as const;
    await control.publishAsync(
      topics.telemetry('control-1'),
      encodeBatch({ vehicle: 'control-1', headTs: reading.ts, readings: [reading] }),
      { qos: 1 },
    );
    await waitFor('the control batch stored', () => storedSeqs(cloud.detector, 'control-1').length === 1);
    await control.endAsync(true);
    for (const c of clients) assert.equal(c.connected, true, 'the fuzzed vehicles are still connected');
    tally.finish({ minCases: n });
  });
});
