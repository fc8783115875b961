import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, it } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { encodeBatch } from '../../shared/contract/codec.js';
import type { Reading } from '../../shared/contract/reading.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { tempDir, waitFor } from '../support/harness.js';

const batch = (vehicle: string, seq: number, count = 1) => {
  const readings: Reading[] = Array.from({ length: count }, (_, i) => ({
    vehicle, seq: seq + i, ts: Date.now() - 1000 + i, clock: 'synced', sensor: 'speed', value: 50, quality: 'good',
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

  const connect = (clientId: string) => mqtt.connectAsync(cloud.mqttUrl, { clientId, reconnectPeriod: 0, protocolVersion: 4 }).then((c) => {
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
      gateway: { maxConnections: MAX_CONNECTIONS, maxPublishesPerSecond: RATE, publishBurst: BURST, maxPayloadBytes: 4096, maxBatchReadings: 10 },
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
    assert.deepEqual(storedSeqs(cloud.detector, 'rate-1'), Array.from({ length: n }, (_, i) => i + 1), 'all stored, in order');
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
    await waitFor('the reconnected vehicle\'s batch stored', () => storedSeqs(cloud.detector, 'flood-1').includes(100), 5000);
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

  it('cuts a connection whose packet header announces more than the limit, before it is read', async () => {
    await waitFor('connections released', () => cloud.gateway.health().clients <= 1, 5000);
    const socket = tcpConnect(cloud.gateway.port, '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    // CONNECT for client id "big-1", then a PUBLISH whose remaining length says 200 MB.
    const connectPacket = Buffer.from([0x10, 17, 0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 2, 0, 30, 0, 5, ...Buffer.from('big-1')]);
    socket.write(Buffer.concat([connectPacket, Buffer.from([0x32, 0x80, 0xa8, 0xad, 0x5f])]));
    await closed;
    assert.equal(await metric('fleet_gateway_connections_refused_total', 'packet_too_large'), 1);
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
