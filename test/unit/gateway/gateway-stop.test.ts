import assert from 'node:assert/strict';
import { afterEach, describe, it, vi } from 'vitest';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { Gateway } from '../../../gateway/gateway.js';
import { gatewayConfigSchema, gatewayOptions } from '../../../gateway/gateway-config.js';
import type { Sink, SinkHealth, SinkRecord } from '../../../gateway/sink.js';
import { encodeBatch } from '../../../shared/contract/codec.js';
import { topics } from '../../../shared/contract/topics.js';
import { tempDir } from '../../support/harness.js';

const V = 'truck-1';

/**
 * A sink that fails while told to, recording each write and whether it came after close():
 * the gateway must never write into a sink it has closed.
 */
class ScriptedSink implements Sink {
  readonly name = 'embedded';
  failing = false;
  closed = false;
  readonly writes: { seq: number; afterClose: boolean }[] = [];

  async start(): Promise<void> {}

  async write(record: SinkRecord): Promise<void> {
    this.writes.push({ seq: record.batch.readings[0]!.seq, afterClose: this.closed });
    if (this.failing) throw new Error('stream unavailable');
  }

  health(): SinkHealth {
    return { ok: !this.failing };
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Polls on event-loop turns (setTimeout is faked in these tests); bounded in real time. */
async function turnsUntil(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

const batch = (seq: number) =>
  encodeBatch({
    vehicle: V,
    headTs: Date.now(),
    readings: [{ vehicle: V, seq, ts: Date.now(), clock: 'synced', sensor: 'engine_temp', value: 90, quality: 'good' }],
  });

const clients: MqttClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.endAsync(true);
  vi.useRealTimers();
});

async function setUp(settings: Record<string, unknown>) {
  // Every timeout of the gateway's, and of aedes and the client, runs on the test's clock.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const sink = new ScriptedSink();
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const config = gatewayConfigSchema.parse({ port: 0, opsPort: -1, dataDir: tempDir('fleet-gateway-stop-'), ...settings });
  const gateway = new Gateway(gatewayOptions(config), [sink], log);
  await gateway.start();
  const client = mqtt.connect(`mqtt://127.0.0.1:${gateway.port}`, { clientId: V, protocolVersion: 4, clean: false, reconnectPeriod: 0 });
  clients.push(client);
  await turnsUntil('connected', () => client.connected);
  const publish = (seq: number) => void client.publish(topics.telemetry(V), batch(seq), { qos: 1 });
  return { gateway, sink, lines, publish };
}

describe('stopping the gateway', () => {
  it('while a failing sink waits to be retried: stop returns at once, and nothing is written afterwards', async () => {
    const t = await setUp({ sinkRetryBaseMs: 60_000, sinkRetryMaxMs: 60_000 });
    t.sink.failing = true;
    t.publish(1);
    await turnsUntil('the first failed write', () => t.lines.some((l) => l.msg === 'sink write failed, PUBACK held'));
    let stopped = false;
    const stopping = t.gateway.stop().then(() => (stopped = true));
    await turnsUntil('stopped without the clock moving', () => stopped);
    await stopping;
    await vi.advanceTimersByTimeAsync(0); // what is due now (closing sockets) runs
    assert.equal(vi.getTimerCount(), 0, 'no retry timer keeps the process alive');
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    assert.deepEqual(t.sink.writes, [{ seq: 1, afterClose: false }], 'no write retried into the closed sink');
    const afterStop = t.lines.slice(t.lines.findIndex((l) => l.msg === 'gateway stopped') + 1);
    assert.deepEqual(afterStop, [], 'nothing logged after the stop');
  });

  it('with publishes waiting for the rate limit: no throttle timer outlives stop, nothing is admitted afterwards', async () => {
    const t = await setUp({ maxPublishesPerSecond: 1, publishBurst: 5 });
    // The burst lets five through at once; from the sixth on, each waits a second for its token.
    for (let seq = 1; seq <= 8; seq++) t.publish(seq);
    const metric = t.gateway.registry.getSingleMetric('fleet_gateway_publishes_throttled_total')!;
    let throttled = 0;
    await turnsUntil('three publishes held for the rate', () => {
      void metric.get().then((m) => (throttled = m.values[0]?.value ?? 0));
      return throttled === 3;
    });
    await t.gateway.stop();
    await vi.advanceTimersByTimeAsync(0); // what is due now (closing sockets) runs
    assert.equal(vi.getTimerCount(), 0, 'no throttle timer keeps the process alive');
    const written = t.sink.writes.length;
    await vi.advanceTimersByTimeAsync(60_000);
    assert.equal(t.sink.writes.length, written);
    assert.ok(t.sink.writes.every((w) => !w.afterClose));
  });
});
