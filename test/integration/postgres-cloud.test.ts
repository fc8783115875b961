import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import type { StoredAlert } from '../../cloud/store/stored-alert.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { Cloud } from '../support/cloud.js';
import { getJson, sleep, tempDir, waitFor } from '../support/harness.js';
import { query, startPostgres, type PostgresServer } from '../support/postgres.js';

const AUTH = { headers: { authorization: `Bearer ${DEV_CONSOLE_TOKEN}` } };
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 100, severity: 'critical' }],
};

/**
 * Gateway, detector (with its dispatcher telling the cab) and console in this process, on one
 * real PostgreSQL, fed by simulated trucks over MQTT; PostgreSQL is stopped and started again
 * while they run.
 */
describe('the cloud on PostgreSQL', () => {
  const dir = tempDir('fleet-pg-cloud-');
  let pg: PostgresServer;
  let url: string;
  let cloud: Cloud;
  let fleet: SimulatedFleet;

  beforeAll(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    cloud = await new Cloud({
      dir,
      rules: RULES,
      freshnessMs: 120_000,
      withConsole: true,
      detector: { store: url, pollIntervalMs: 50 },
    }).start();
    fleet = new SimulatedFleet({ count: 3, prefix: 'pg-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'trucks'), simHz: 10 }, cloud.log);
    fleet.trucks[1]!.model.inject({ kind: 'engine_overheat', from: Date.now(), to: Date.now() + 120_000 });
    await fleet.start();
  });

  afterAll(async () => {
    await fleet?.stop();
    await cloud?.stop();
    await pg?.stop();
  });

  it('raises the overheat once, tells the cab through the ledger in PostgreSQL, and the console shows it', async () => {
    const cab = fleet.trucks[1]!.driver;
    await waitFor('the overheat shown in the cab', () => cab.shown.length > 0, 90_000, 200);
    const alertId = cab.shown[0]!.alert.id;
    const consoleUrl = cloud.console!.url;
    const alert = await waitFor(
      'the console shows the cab has it',
      async () => {
        const { body } = await getJson<StoredAlert>(`${consoleUrl}/api/alerts/${encodeURIComponent(alertId)}`, AUTH);
        return body.driverSentAt !== null && body;
      },
      30_000,
      200,
    );
    assert.equal(alert.vehicle, 'pg-02');
    assert.equal(alert.rule, 'engine-overheat');
    const { body: alerts } = await getJson<StoredAlert[]>(`${consoleUrl}/api/alerts?vehicle=pg-02`, AUTH);
    assert.equal(alerts.filter((a) => a.rule === 'engine-overheat' && a.state !== 'cleared').length, 1, 'one open episode');
  });

  it('loses nothing across a PostgreSQL restart: the detector retries and commits no position past what is stored', async () => {
    const stored = async (vehicle: string) =>
      (await query<{ seq: number }>(url, 'SELECT seq::integer AS seq FROM readings WHERE vehicle = $1 ORDER BY seq', [vehicle])).map(
        (r) => r.seq,
      );
    await waitFor('readings stored in PostgreSQL', async () => (await stored('pg-01')).length > 20, 30_000, 200);

    await pg.stop();
    await waitFor('the detector unhealthy while PostgreSQL is away', async () => !(await cloud.detector.health()).ok, 30_000, 100);
    // The trucks go on producing; the gateway keeps appending to the stream meanwhile.
    await sleep(3000);
    await pg.restart();
    await waitFor('the detector healthy again', async () => (await cloud.detector.health()).ok, 60_000, 200);

    assert.ok(await fleet.drain(30_000), 'every truck drained');
    for (const { agent } of fleet.trucks) {
      const vehicle = agent.opts.vehicle;
      const produced = agent.buffer.stats().nextSeq - 1;
      await waitFor(`${vehicle}: ${produced} readings stored`, async () => (await stored(vehicle)).length >= produced, 60_000, 200);
      assert.deepEqual(
        (await stored(vehicle)).slice(0, produced),
        Array.from({ length: produced }, (_, i) => i + 1),
        `${vehicle}: every seq, once`,
      );
    }
    const { readingsStored } = await cloud.detector.store.counts();
    const [{ n } = { n: -1 }] = await query<{ n: number }>(url, 'SELECT count(*)::integer AS n FROM readings');
    assert.equal(readingsStored, n, 'the count kept beside the readings agrees with them');
  });
});
