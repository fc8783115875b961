import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';

/**
 * Timeline (seconds after start): the gateway is down from 12 to 67; truck 2's cooling
 * fails from 14 to 40, which takes a window's mean engine temperature past 100 °C between
 * about 18 s (a hot engine at onset) and 42 s (a cool one). The raising window therefore
 * ends inside the outage, well over the 10 s freshness limit before the backlog arrives.
 */
const OUTAGE_FROM_S = 12;
const OUTAGE_S = 55;
const OVERHEAT_S = { from: OUTAGE_FROM_S + 2, to: OUTAGE_FROM_S + 28 };
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }],
};

describe('gateway outage with 5 producing agents', () => {
  const dir = tempDir();
  let cloud: Cloud;
  let fleet: SimulatedFleet;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, rules: RULES, freshnessMs: 10_000 }).start();
    fleet = new SimulatedFleet(
      {
        count: 5,
        prefix: 'out-',
        mqttUrl: cloud.mqttUrl,
        dataDir: join(dir, 'trucks'),
        simHz: 10,
        agent: { reconnectBaseMs: 200, reconnectMaxMs: 2000 },
      },
      cloud.log,
    );
    const startedAt = Date.now();
    fleet.trucks[1]!.model.inject({
      kind: 'engine_overheat',
      from: startedAt + OVERHEAT_S.from * 1000,
      to: startedAt + OVERHEAT_S.to * 1000,
    });
    await fleet.start();
  });

  afterAll(async () => {
    await fleet.stop();
    await cloud.stop();
  });

  it('loses nothing, and alerts from the backlog are historical and reach no driver', async () => {
    await sleep(OUTAGE_FROM_S * 1000);
    await cloud.stopGateway();
    const buffered = () => fleet.trucks.reduce((n, t) => n + t.agent.buffer.stats().readings, 0);
    await sleep(OUTAGE_S * 1000);
    const backlog = buffered();
    assert.ok(backlog > 5 * 10 * (OUTAGE_S - 2), `agents buffered through the outage (${backlog})`);
    await cloud.startGateway();

    assert.ok(await fleet.drain(30_000), 'every agent drained its backlog');
    for (const { agent } of fleet.trucks) {
      const produced = agent.buffer.stats().nextSeq - 1;
      await waitFor(
        `${agent.opts.vehicle}: ${produced} readings stored`,
        () => storedSeqs(cloud.detector, agent.opts.vehicle).length === produced,
        20_000,
      );
    }
    const lost = fleet.readingsProduced() - (await cloud.detector.store.counts()).readingsStored;
    assert.equal(lost, 0);

    const alerts = await cloud.detector.store.listAlerts();
    assert.equal(alerts.length, 1, `one overheat episode, got ${alerts.map((a) => a.id).join(', ')}`);
    const [alert] = alerts;
    assert.equal(alert!.vehicle, 'out-02');
    assert.equal(
      alert!.live,
      false,
      `raised from the backlog: historical (window ${alert!.windowStart}–${alert!.windowEnd}, raised ${alert!.raisedAt})`,
    );
    assert.equal(alert!.driverSentAt, null);
    await sleep(1500); // a dispatch, if any were wrongly made, has time to land
    for (const { driver } of fleet.trucks) assert.equal(driver.shown.length, 0);
  });
});
