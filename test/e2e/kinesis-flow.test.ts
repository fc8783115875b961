import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { GetThingShadowCommand, IoTDataPlaneClient } from '@aws-sdk/client-iot-data-plane';
import { CreateThingCommand, IoTClient } from '@aws-sdk/client-iot';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { tempDir, waitFor } from '../support/harness.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';
import { queryFile } from '../support/sqlite.js';

const REGION = 'us-east-1';
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

/** Trucks → gateway → Kinesis (2 shards, on moto) → detector, with IoT Core beside it. */
describe('the fleet over Kinesis and IoT Core on moto', () => {
  const dir = tempDir();
  let moto: MotoServer;
  let cloud: Cloud;
  let fleet: SimulatedFleet;

  beforeAll(async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    moto = await startMoto();
    const aws = { awsRegion: REGION, awsEndpoint: moto.endpoint };
    // moto keeps shadows only for registered things (IoT Core itself does not need this).
    const iot = new IoTClient(awsClientConfig({ region: REGION, endpoint: moto.endpoint }));
    for (const thingName of ['kin-01', 'kin-02', 'kin-03', 'kin-04']) await iot.send(new CreateThingCommand({ thingName }));
    iot.destroy();
    cloud = await new Cloud({
      dir,
      rules: RULES,
      gateway: { sinks: ['kinesis', 'iot-core'], kinesisShards: 2, iotShadowIntervalMs: 500, ...aws },
      detector: { source: 'kinesis', ...aws },
    }).start();
    fleet = new SimulatedFleet(
      { count: 4, prefix: 'kin-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'trucks'), simHz: 2, overheat: { truck: 3, atS: 1 } },
      cloud.log,
    );
    await fleet.start();
  });

  afterAll(async () => {
    await fleet.stop();
    await cloud.stop();
    await moto.stop();
  });

  it('raises the overheat once, stores every reading, and keeps each shadow at its last position', async () => {
    const hot = fleet.trucks[2]!;
    const shown = await waitFor('the cab alert of kin-03', () => hot.driver.shown[0], 60_000);
    assert.equal(shown.alert.rule, 'engine-overheat');
    assert.ok(await fleet.drain(20_000));
    for (const { agent } of fleet.trucks) {
      const produced = agent.buffer.stats().nextSeq - 1;
      await waitFor(`${agent.opts.vehicle} stored`, () => storedSeqs(cloud.detector, agent.opts.vehicle).length === produced, 20_000);
      assert.deepEqual(
        storedSeqs(cloud.detector, agent.opts.vehicle),
        Array.from({ length: produced }, (_, i) => i + 1),
      );
    }
    assert.equal((await cloud.detector.store.listAlerts({ vehicle: 'kin-03' })).length, 1);

    const data = new IoTDataPlaneClient(awsClientConfig({ region: REGION, endpoint: moto.endpoint }));
    for (const { agent } of fleet.trucks) {
      const vehicle = agent.opts.vehicle;
      const last = agent.buffer.stats().nextSeq - 1;
      const [lastGps] = queryFile<{ lat: number; lon: number }>(
        cloud.detector.store.location,
        "SELECT lat, lon FROM readings WHERE vehicle = ? AND sensor = 'gps' ORDER BY seq DESC LIMIT 1",
        vehicle,
      );
      assert.ok(lastGps, `${vehicle}: a position stored`);
      await waitFor(
        `${vehicle}'s shadow at its last position (seq ${last})`,
        async () => {
          const out = await data.send(new GetThingShadowCommand({ thingName: vehicle }));
          const doc = JSON.parse(new TextDecoder().decode(out.payload)) as {
            state: { reported: { position?: { lat: number; lon: number } } };
          };
          const p = doc.state.reported.position;
          return p !== undefined && Math.abs(p.lat - lastGps.lat) < 1e-6 && Math.abs(p.lon - lastGps.lon) < 1e-6;
        },
        10_000,
        200,
      );
    }
    data.destroy();
  });
});
