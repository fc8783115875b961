import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import type { StoredAlert } from '../../cloud/store.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { getJson, tempDir, waitFor } from '../support/harness.js';

/**
 * Threshold at 95 °C over 2-second windows: the simulated overheat crosses it within
 * about ten seconds instead of forty, which keeps the test short without changing the path.
 */
const FAST_RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 95, severity: 'critical' }],
};

describe('overheat → detector → driver and console', () => {
  const dir = tempDir();
  let cloud: Cloud;
  let fleet: SimulatedFleet;

  before(async () => {
    cloud = await new Cloud({ dir, rules: FAST_RULES, withConsole: true }).start();
    fleet = new SimulatedFleet(
      { count: 3, prefix: 'tk-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'trucks'), simHz: 5, overheat: { truck: 2, atS: 1 } },
      cloud.log,
    );
    await fleet.start();
  });

  after(async () => {
    await fleet.stop();
    await cloud.stop();
  });

  it('reaches the cab and /api/alerts within 2 s of the closing window, and only for the hot truck', async () => {
    const hot = fleet.trucks[1]!;
    const shown = await waitFor('the driver alert in the cab of tk-02', () => hot.driver.shown[0], 60_000);
    const alert = shown.alert;
    assert.equal(alert.vehicle, 'tk-02');
    assert.equal(alert.rule, 'engine-overheat');
    assert.equal(alert.live, true);
    assert.equal(alert.id, `tk-02.engine-overheat.${alert.episodeStart}`);
    assert.ok(alert.observed > 95, `observed ${alert.observed}`);
    const cabLatency = shown.shownAt - alert.closedAt;
    assert.ok(cabLatency >= 0 && cabLatency < 2000, `cab latency ${cabLatency} ms`);

    const consoleUrl = cloud.console!.url;
    const listed = await waitFor('the alert on /api/alerts', async () => {
      const { body } = await getJson<StoredAlert[]>(`${consoleUrl}/api/alerts`, { headers: { authorization: `Bearer ${DEV_CONSOLE_TOKEN}` } });
      return body.find((a) => a.id === alert.id);
    }, 2000, 20);
    assert.ok(Date.now() - alert.closedAt < 2000 + 50, 'console shows it within 2 s');
    assert.equal(listed.severity, 'critical');
    assert.equal(listed.state, 'active');
    assert.ok(listed.driverSentAt !== null);

    // Healthy trucks stay quiet, and the hot truck gets its alert once.
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(fleet.trucks[0]!.driver.shown.length, 0);
    assert.equal(fleet.trucks[2]!.driver.shown.length, 0);
    assert.equal(new Set(hot.driver.shown.map((s) => s.alert.id)).size, hot.driver.shown.length);
  });

  it('stores every reading it produced once the trucks drain', async () => {
    assert.ok(await fleet.drain(15_000), 'buffers drained');
    for (const { agent } of fleet.trucks) {
      const produced = agent.buffer.stats().nextSeq - 1;
      await waitFor(`all ${produced} readings of ${agent.opts.vehicle} stored`, () => storedSeqs(cloud.detector, agent.opts.vehicle).length === produced, 10_000);
      const seqs = storedSeqs(cloud.detector, agent.opts.vehicle);
      assert.deepEqual(seqs, Array.from({ length: produced }, (_, i) => i + 1));
    }
  });
});
