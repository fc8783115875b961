import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { agentConfigSchema } from '../../agent/agent-config.js';
import { SENSORS } from '../../shared/contract/sensors.js';
import { createSimulatedTruck } from '../../simulators/simulated-agent.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { simulateSamples } from '../../simulators/fast-forward.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';

const HOUR = 3600_000;

describe('the fleet over Kafka when things go wrong', () => {
  const dir = tempDir();
  let kafka: KafkaBroker;
  let cloud: Cloud;

  beforeAll(async () => {
    kafka = await startKafka();
    const stream = { kafkaBrokers: [kafka.bootstrap] };
    cloud = await new Cloud({ dir, gateway: { sinks: ['kafka'], ...stream }, detector: { source: 'kafka', ...stream } }).start();
  });

  afterAll(async () => {
    await cloud.stop();
    await kafka.stop();
  });

  it('loses nothing while the broker is down for 20 s, and PUBACKs resume by themselves', async () => {
    const fleet = new SimulatedFleet({ count: 3, prefix: 'ko-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'ko'), simHz: 5 }, cloud.log);
    await fleet.start();
    try {
      await waitFor('readings flowing', () => storedSeqs(cloud.detector, 'ko-01').length > 50, 30_000);
      await kafka.stop();
      await waitFor('the gateway reporting its sink down', () => !cloud.gateway.health().ok, 30_000, 100);
      await sleep(20_000);
      const held = fleet.trucks.reduce((n, t) => n + t.agent.buffer.stats().readings, 0);
      assert.ok(held > 3 * 25 * 15, `agents kept what was not acknowledged (${held})`);
      await kafka.restart();
      assert.ok(await fleet.drain(60_000), 'PUBACKs resumed and every buffer drained');
      assert.ok(cloud.gateway.health().ok, 'the sink recovered by itself');
      for (const { agent } of fleet.trucks) {
        const produced = agent.buffer.stats().nextSeq - 1;
        await waitFor(
          `${agent.opts.vehicle}: all ${produced} stored`,
          () => storedSeqs(cloud.detector, agent.opts.vehicle).length === produced,
          60_000,
          200,
        );
        assert.deepEqual(
          storedSeqs(cloud.detector, agent.opts.vehicle),
          Array.from({ length: produced }, (_, i) => i + 1),
        );
      }
    } finally {
      await fleet.stop();
    }
  });

  it('stores a one-hour backlog completely, evaluates it in event time, and tells no driver', async () => {
    const now = Date.now();
    const overheatAt = now - 40 * 60_000;
    // What the truck recorded through an hour without signal: the engine at 10 Hz, overheating for five minutes.
    const model = new TruckModel({
      seed: 7,
      startTs: now - HOUR - 15 * 60_000,
      faults: [{ kind: 'engine_overheat', from: overheatAt, to: overheatAt + 5 * 60_000 }],
    });
    model.advance(now - HOUR);
    const config = agentConfigSchema.parse({
      vehicle: 'backlog-1',
      mqttUrl: cloud.mqttUrl,
      dataDir: join(dir, 'backlog'),
      opsPort: -1,
      simHz: 0.5,
    });
    const truck = createSimulatedTruck(config, cloud.log.child({ vehicle: 'backlog-1' }));
    const samples = [...simulateSamples(model, now - HOUR, now, Object.fromEntries(SENSORS.map((s) => [s, s === 'engine_temp' ? 10 : 0])))];
    assert.equal(samples.length, 36_000);
    for (let i = 0; i < samples.length; i += 2000) truck.agent.buffer.append(samples.slice(i, i + 2000));

    await truck.agent.start();
    try {
      await waitFor('the backlog stored', () => storedSeqs(cloud.detector, 'backlog-1').length >= 36_000, 120_000, 250);
      const seqs = storedSeqs(cloud.detector, 'backlog-1');
      assert.deepEqual(
        seqs.slice(0, 36_000),
        Array.from({ length: 36_000 }, (_, i) => i + 1),
        'every backlog reading, in order',
      );
      const alerts = await cloud.detector.store.listAlerts({ vehicle: 'backlog-1' });
      const overheat = alerts.filter((a) => a.rule === 'engine-overheat');
      assert.equal(overheat.length, 1, 'the overheat, once');
      assert.ok(overheat[0]!.windowStart >= overheatAt && overheat[0]!.windowEnd <= overheatAt + 6 * 60_000, 'placed in event time');
      assert.ok(
        alerts.every((a) => !a.live),
        'every alert from the backlog is historical',
      );
      await sleep(1500);
      assert.equal(truck.driver.shown.length, 0, 'no driver alert about the past');
    } finally {
      await truck.agent.stop();
    }
  });
});
