import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startGateway } from '../../bin/commands/gateway.js';
import { SqliteStore } from '../../cloud/store/sqlite/sqlite-store.js';
import type { Gateway } from '../../gateway/gateway.js';
import { gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { createLogger } from '../../shared/log.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { freePort, kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { startKafka, type KafkaBroker } from '../support/kafka-broker.js';
import { queryFile } from '../support/sqlite.js';

const TRUCKS = 20;
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

/** 20 trucks → gateway → Kafka (6 partitions) → two detector processes sharing the partitions. */
describe('detectors scaled out over Kafka partitions', () => {
  const dir = tempDir();
  const log = createLogger('test', { file: join(dir, 'test.log') });
  let kafka: KafkaBroker;
  let gateway: Gateway;
  let fleet: SimulatedFleet;
  const detectors: Proc[] = [];

  beforeAll(async () => {
    kafka = await startKafka();
    gateway = await startGateway(
      gatewayConfigSchema.parse({
        port: await freePort(),
        dataDir: join(dir, 'gateway'),
        opsPort: -1,
        sinks: ['kafka'],
        kafkaBrokers: [kafka.bootstrap],
        kafkaPartitions: 6,
      }),
      log,
    );
    writeFileSync(join(dir, 'rules.json'), JSON.stringify(RULES));
    const detectorArgs = [
      'detector',
      '--source',
      'kafka',
      '--kafka-brokers',
      kafka.bootstrap,
      '--consumer-group',
      'detectors',
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      join(dir, 'rules.json'),
      '--mqtt-url',
      `mqtt://127.0.0.1:${gateway.port}`,
      '--ops-port',
      '-1',
    ];
    detectors.push(runFleet(detectorArgs), runFleet(detectorArgs));
    fleet = new SimulatedFleet(
      {
        count: TRUCKS,
        prefix: 'kf-',
        mqttUrl: `mqtt://127.0.0.1:${gateway.port}`,
        dataDir: join(dir, 'trucks'),
        simHz: 2,
        overheat: { truck: 7, atS: 2 },
      },
      log,
    );
    await fleet.start();
  });

  afterAll(async () => {
    await fleet.stop();
    for (const d of detectors) await kill(d, 'SIGKILL');
    await gateway.stop();
    await kafka.stop();
  });

  it('counts each reading once, survives a SIGKILLed detector, and raises the overheat once', async () => {
    mkdirSync(join(dir, 'cloud'), { recursive: true });
    const store = new SqliteStore(join(dir, 'cloud', 'fleet.db'));
    try {
      await waitFor('both detectors storing readings', async () => (await store.counts()).readingsStored > TRUCKS * 20, 60_000, 200);
      await sleep(4000);
      await kill(detectors[0]!, 'SIGKILL');
      await sleep(12_000);
      // The failed cooling takes the engine past 105 °C about 35 s after onset; the survivor raises it.
      await waitFor('the overheat raised', async () => (await store.listAlerts()).length > 0, 90_000, 250);
      assert.ok(await fleet.drain(30_000), 'every truck drained');
      for (const { agent } of fleet.trucks) {
        const vehicle = agent.opts.vehicle;
        const produced = agent.buffer.stats().nextSeq - 1;
        const seqs = () =>
          queryFile<{ seq: number }>(store.location, 'SELECT seq FROM readings WHERE vehicle = ? ORDER BY seq', vehicle).map((r) => r.seq);
        await waitFor(`${vehicle}: ${produced} readings stored`, () => seqs().length === produced, 60_000, 200);
        assert.deepEqual(
          seqs(),
          Array.from({ length: produced }, (_, i) => i + 1),
          `${vehicle}: no reading skipped`,
        );
      }
      const produced = fleet.readingsProduced();
      assert.equal((await store.counts()).readingsStored, produced, 'each reading counted once after dedupe');
      const alerts = await store.listAlerts();
      assert.deepEqual(
        alerts.map((a) => a.vehicle),
        ['kf-07'],
        'exactly one alert, for the overheating truck',
      );
      await waitFor('the cab alert', () => fleet.trucks[6]!.driver.shown.length === 1, 10_000);
      process.stdout.write(`# kafka scale-out: produced=${produced} duplicates=${(await store.counts()).duplicates}\n`);
    } finally {
      await store.close();
    }
  });
});
