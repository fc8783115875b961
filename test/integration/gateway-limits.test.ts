import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { tempDir, waitFor, within } from '../support/harness.js';

const batch = (vehicle: string, seq: number, count = 1) => {
  const readings: Reading[] = Array.from({ length: count }, (_, i) => ({
    vehicle,
    seq: seq + i,
    ts: Date.now() - 1000 + i,
    clock: 'synced',
    sensor: 'speed',
    value: 50,
    quality: 'good',
  }));
  return encodeBatch({ vehicle, headTs: readings.at(-1)!.ts, readings });
};

describe('gateway limits: connections, publish rate, packet and batch size', () => {
  const dir = tempDir();
  let cloud: Cloud;
  const clients: MqttClient[] = [];
  const RATE = 20;
  const BURST = 5;
  const MAX_CONNECTIONS = 4;
  const MAX_PAYLOAD = 4096;
  const CONNECT_TIMEOUT_MS = 1000;
  const logText = () => readFileSync(join(dir, 'cloud.log'), 'utf8');

  const connect = (clientId: string) =>
    mqtt.connectAsync(cloud.mqttUrl, { clientId, reconnectPeriod: 0, protocolVersion: 4 }).then((c) => {
      clients.push(c);
      return c;
    });
  const metric = async (name: string, reason?: string) => {
    const m = await cloud.gateway.registry.getSingleMetric(name)!.get();
    return m.values.filter((v) => reason === undefined || v.labels.reason === reason).reduce((n, v) => n + v.value, 0);
  };

  beforeAll(async () => {
    cloud = await new Cloud({
      dir,
      gateway: {
        maxConnections: MAX_CONNECTIONS,
        maxPublishesPerSecond: RATE,
        publishBurst: BURST,
        maxPayloadBytes: MAX_PAYLOAD,
        maxBatchReadings: 10,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      },
    }).start();
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.endAsync(true)));
    await cloud.stop();
  });

  it('holds PUBACKs beyond the per-vehicle rate rather than refusing them, in order', async () => {
    const c = await connect('rate-1');
    const started = Date.now();
    const n = 2 * BURST;
    await Promise.all(Array.from({ length: n }, (_, i) => c.publishAsync(topics.telemetry('rate-1'), batch('rate-1', i + 1), { qos: 1 })));
    const took = Date.now() - started;
    assert.ok(took >= ((n - BURST - 1) * 1000) / RATE, `the last PUBACKs waited for the rate: ${took} ms`);
    await waitFor('all stored', () => storedSeqs(cloud.detector, 'rate-1').length === n, 5000);
    assert.deepEqual(
      storedSeqs(cloud.detector, 'rate-1'),
      Array.from({ length: n }, (_, i) => i + 1),
      'all stored, in order',
    );
    assert.ok((await metric('fleet_gateway_publishes_throttled_total')) >= n - BURST - 1);
  });

  it('cuts off a vehicle that keeps flooding, and takes it back when it reconnects', async () => {
    const c = await connect('flood-1');
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    for (let i = 0; i < 4 * BURST; i++) c.publish(topics.telemetry('flood-1'), batch('flood-1', i + 1), { qos: 1 });
    await closed;
    assert.equal(await metric('fleet_gateway_refused_total', 'rate_limited'), 1);
    const again = await connect('flood-1');
    await again.publishAsync(topics.telemetry('flood-1'), batch('flood-1', 100), { qos: 1 });
    await waitFor("the reconnected vehicle's batch stored", () => storedSeqs(cloud.detector, 'flood-1').includes(100), 5000);
  });

  it('refuses connections beyond the limit with CONNACK 3 (server unavailable)', async () => {
    await waitFor('earlier clients gone', () => cloud.gateway.health().clients <= 3, 5000);
    while (cloud.gateway.health().clients < MAX_CONNECTIONS) await connect(`conn-${cloud.gateway.health().clients}`);
    const err = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'one-too-many', reconnectPeriod: 0 }).then(
      (c) => {
        clients.push(c);
        return undefined;
      },
      (e: Error & { code?: number }) => e,
    );
    assert.equal(err?.code, 3);
    assert.equal(await metric('fleet_gateway_connections_refused_total', 'too_many_connections'), 1);
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
  });

  it('cuts a connection whose packet header announces more than the limit before it is read, and tells the vehicle why', async () => {
    await waitFor('connections released', () => cloud.gateway.health().clients <= 1, 5000);
    const c = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'big-1', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    await c.subscribeAsync(topics.rejected('big-1'), { qos: 1 });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    // A SUBSCRIBE whose remaining length says 2 MiB: no packet but a PUBLISH may be longer than the limit.
    (c.stream as Socket).write(Buffer.from([0x82, 0x80, 0x80, 0x80, 0x01]));
    await closed;
    await c.endAsync(true);
    assert.equal(await metric('fleet_gateway_connections_refused_total', 'packet_too_large'), 1);
    await waitFor(
      'the cut logged with the vehicle',
      () => /"vehicle":"big-1"[^\n]*"reason":"packet_too_large"[^\n]*"msg":"connection cut"/.test(logText()),
      5000,
    );
    // The notice waits in the vehicle's session for its next connection.
    const again = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'big-1', clean: false, reconnectPeriod: 0, protocolVersion: 4 });
    clients.push(again);
    const notice = await within(
      'the notice on the next connection',
      new Promise<{ reason: string; detail: string }>((resolve) =>
        again.on('message', (_t, p) => resolve(JSON.parse(p.toString()) as { reason: string; detail: string })),
      ),
      5000,
    );
    assert.equal(notice.reason, 'packet_too_large');
    assert.match(notice.detail, /packet of 2097152 bytes exceeds the limit/);
  });

  it('acknowledges a payload far beyond the packet limit, keeps its first bytes, tells the vehicle why and keeps the connection', async () => {
    // As an agent would: QoS 1, a persistent session, reconnecting by itself. Cutting it off would make it resend for ever.
    const c = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'big-2', clean: false, reconnectPeriod: 100, protocolVersion: 4 });
    clients.push(c);
    let reconnects = 0;
    c.on('connect', () => reconnects++);
    const notices: { reason: string; detail: string }[] = [];
    c.on('message', (_t, p) => notices.push(JSON.parse(p.toString()) as { reason: string; detail: string }));
    await c.subscribeAsync(topics.rejected('big-2'), { qos: 1 });
    const refusedBefore = await metric('fleet_gateway_refused_total', 'oversize');
    const huge = Buffer.alloc(200_000, 0x41);
    huge.write('{"readings": [', 0);
    await within('the PUBACK of a 200 kB payload', c.publishAsync(topics.telemetry('big-2'), huge, { qos: 1 }), 10_000);
    await within('a QoS 0 one after it', c.publishAsync(topics.telemetry('big-2'), Buffer.alloc(100_000, 0x42), { qos: 0 }), 10_000);
    // The bytes after the kept part were read and dropped: the next packet on the connection is understood.
    await c.publishAsync(topics.telemetry('big-2'), batch('big-2', 1), { qos: 1 });
    await waitFor('the valid batch after them stored', () => storedSeqs(cloud.detector, 'big-2').length === 1, 5000);
    assert.equal(reconnects, 0, 'never cut off');
    await waitFor('two rejection notices', () => notices.length >= 2, 5000);
    assert.deepEqual(
      notices.map((n) => n.reason),
      ['oversize', 'oversize'],
    );
    assert.match(
      notices[0]!.detail,
      new RegExp(`payload of 200000 bytes exceeds the limit of ${MAX_PAYLOAD}; its first ${MAX_PAYLOAD} bytes are kept`),
    );
    assert.match(notices[1]!.detail, /payload of 100000 bytes/);
    assert.equal((await metric('fleet_gateway_refused_total', 'oversize')) - refusedBefore, 2);
    const db = new Database(join(dir, 'gateway', 'dead-letters.db'), { readonly: true });
    const kept = db.prepare("SELECT reason, payload FROM dead_letters WHERE vehicle = 'big-2' ORDER BY id").all() as {
      reason: string;
      payload: Buffer;
    }[];
    db.close();
    assert.equal(kept.length, 2);
    assert.deepEqual(kept[0]!.payload, huge.subarray(0, MAX_PAYLOAD));
    assert.match(kept[0]!.reason, /^oversize: payload of 200000 bytes/);
    await waitFor('the refusal logged with the vehicle', () => /"vehicle":"big-2"[^\n]*"reason":"oversize"/.test(logText()), 5000);
  });

  it('stores QoS 0 and QoS 2 telemetry as QoS 1, and completes a QoS 2 publish only once the stream has it', async () => {
    const c = await connect('qos-1');
    const before = await metric('fleet_gateway_batches_accepted_total');
    await c.publishAsync(topics.telemetry('qos-1'), batch('qos-1', 1), { qos: 0 });
    // PUBREC, and so PUBCOMP, wait for the sinks as a PUBACK does.
    await c.publishAsync(topics.telemetry('qos-1'), batch('qos-1', 2), { qos: 2 });
    assert.equal((await metric('fleet_gateway_batches_accepted_total')) - before, 2);
    await waitFor('both stored', () => storedSeqs(cloud.detector, 'qos-1').length === 2, 5000);
  });

  it('refuses an MQTT 5 CONNECT, and logs and counts why', async () => {
    const err = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'v5-1', protocolVersion: 5, reconnectPeriod: 0 }).then(
      (c) => {
        clients.push(c);
        return undefined;
      },
      (e: Error) => e,
    );
    assert.ok(err, 'an MQTT 5 client was accepted');
    assert.equal(await metric('fleet_gateway_connections_refused_total', 'unsupported_protocol'), 1);
    await waitFor(
      'the refusal logged',
      () => /"clientId":"v5-1"[^\n]*"reason":"unsupported_protocol","detail":"MQTT 5: the gateway speaks MQTT 3.1.1/.test(logText()),
      5000,
    );
  });

  it('counts connections not yet authenticated against the limit, and cuts those that send no CONNECT in time', async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)));
    await waitFor('only the detector connected', () => cloud.gateway.health().connections.open === 1, 5000);
    const timedOutBefore = await metric('fleet_gateway_connections_refused_total', 'connect_timeout');
    // Sockets that connect and say nothing, up to the limit.
    const silent = await Promise.all(
      Array.from(
        { length: MAX_CONNECTIONS - 1 },
        () =>
          new Promise<{ socket: Socket; closed: Promise<number> }>((resolve) => {
            const socket = tcpConnect(cloud.gateway.port, '127.0.0.1');
            socket.on('error', () => {});
            const opened = Date.now();
            const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now() - opened)));
            socket.once('connect', () => resolve({ socket, closed }));
          }),
      ),
    );
    await waitFor('the silent sockets counted', () => cloud.gateway.health().connections.open === MAX_CONNECTIONS, 5000);
    const refused = await mqtt.connectAsync(cloud.mqttUrl, { clientId: 'late-1', reconnectPeriod: 0 }).then(
      (c) => (clients.push(c), undefined),
      (e: Error & { code?: number }) => e,
    );
    assert.equal(refused?.code, 3, 'CONNACK 3 while unauthenticated connections fill the limit');
    const heldMs = await within('the silent sockets cut', Promise.all(silent.map((s) => s.closed)), 10_000);
    assert.ok(
      heldMs.every((ms) => ms >= CONNECT_TIMEOUT_MS - 50),
      `held for the timeout: ${heldMs.join(', ')} ms`,
    );
    assert.equal((await metric('fleet_gateway_connections_refused_total', 'connect_timeout')) - timedOutBefore, MAX_CONNECTIONS - 1);
    await waitFor(
      'the cuts logged',
      () => /"reason":"connect_timeout","detail":"no CONNECT within 1000 ms","msg":"connection cut"/.test(logText()),
      5000,
    );
    await connect('late-1');
  });

  it('dead-letters a batch with more readings than allowed and tells the vehicle why', async () => {
    const c = await connect('batch-1');
    const notices: { reason: string; detail: string }[] = [];
    c.on('message', (_t, p) => notices.push(JSON.parse(p.toString()) as { reason: string; detail: string }));
    await c.subscribeAsync(topics.rejected('batch-1'), { qos: 1 });
    await c.publishAsync(topics.telemetry('batch-1'), batch('batch-1', 1, 11), { qos: 1 });
    const notice = await waitFor('the rejection notice', () => notices[0], 5000);
    assert.equal(notice.reason, 'too_many_readings');
    assert.match(notice.detail, /11 readings exceed the limit of 10 per batch/);
    assert.deepEqual(storedSeqs(cloud.detector, 'batch-1'), []);
  });
});
