import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { reportReliability, SOAK } from '../support/reliability.js';

const VEHICLE = 'drain-1';
/** Restarts of the gateway while the backlog drains. */
const RESTARTS = 3 * SOAK;

/**
 * An agent builds a backlog while the gateway is down, then drains it slowly (the gateway's
 * per-vehicle rate keeps it at 20 publishes of 20 readings a second) while still sampling,
 * and the gateway is restarted again and again in the middle of that drain.
 */
describe('chaos: the gateway restarted in the middle of a backlog drain', () => {
  const dir = tempDir('fleet-chaos-drain-');
  const dataDir = join(dir, 'agent');
  let cloud: Cloud;
  let agent: Proc | undefined;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, gateway: { maxPublishesPerSecond: 20, publishBurst: 20 } }).start();
    await cloud.stopGateway();
  });

  afterAll(async () => {
    if (agent) await kill(agent, 'SIGKILL');
    await cloud.stop();
  });

  const buffered = () => {
    if (!existsSync(join(dataDir, `${VEHICLE}.buffer.db`))) return 0;
    const db = new Database(join(dataDir, `${VEHICLE}.buffer.db`), { readonly: true });
    try {
      return (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
    } finally {
      db.close();
    }
  };

  it('stores every reading once the drain completes, whatever it was interrupted by', async () => {
    const started = Date.now();
    agent = runFleet([
      'agent',
      '--vehicle',
      VEHICLE,
      '--mqtt-url',
      cloud.mqttUrl,
      '--data-dir',
      dataDir,
      '--sim-hz',
      '40',
      '--batch-max-readings',
      '20',
      '--reconnect-base-ms',
      '100',
      '--reconnect-max-ms',
      '500',
      '--ops-port',
      '-1',
    ]);
    await waitFor('a backlog of 2,000 readings', () => buffered() >= 2000, 30_000, 200);
    await cloud.startGateway();
    const backlog = buffered();
    for (let i = 1; i <= RESTARTS; i++) {
      // Restart once a slice of the backlog has gone: always mid-drain, never before it began.
      await waitFor(
        `drain progress before restart ${i}`,
        () => storedSeqs(cloud.detector, VEHICLE).length >= (backlog * i) / (RESTARTS + 2),
        60_000,
        100,
      );
      assert.ok(buffered() > 100, `restart ${i} lands while the drain is under way (${buffered()} still buffered)`);
      await cloud.stopGateway();
      await sleep(300);
      await cloud.startGateway();
    }
    await kill(agent, 'SIGTERM');
    agent = undefined;
    const db = new Database(join(dataDir, `${VEHICLE}.buffer.db`), { readonly: true });
    const produced = Number((db.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: number }).value) - 1;
    db.close();
    // The SIGTERM drain may run out of time at this rate: what is left goes with one more quiet run.
    if (buffered() > 0) {
      agent = runFleet([
        'agent',
        '--vehicle',
        VEHICLE,
        '--mqtt-url',
        cloud.mqttUrl,
        '--data-dir',
        dataDir,
        '--sim-hz',
        '0.01',
        '--ops-port',
        '-1',
      ]);
      await waitFor('the rest of the backlog', () => buffered() === 0, 60_000, 200);
    }
    await waitFor(`all ${produced} readings stored`, () => storedSeqs(cloud.detector, VEHICLE).length >= produced, 30_000, 200);
    const seqs = storedSeqs(cloud.detector, VEHICLE).filter((s) => s <= produced);
    assert.deepEqual(
      seqs,
      Array.from({ length: produced }, (_, i) => i + 1),
      'every seq stored, once, in the end',
    );
    const { duplicates } = await cloud.detector.store.counts();
    reportReliability({
      kind: 'chaos',
      scenario: 'gateway restarted mid-drain',
      kills: { gateway: RESTARTS },
      produced,
      stored: seqs.length,
      lost: produced - seqs.length,
      duplicates,
      alertsExpected: 0,
      alertsRaised: (await cloud.detector.store.listAlerts()).length,
      notificationsPerAlert: null,
      durationS: Math.round((Date.now() - started) / 1000),
    });
    assert.equal((await cloud.detector.store.listAlerts()).length, 0, 'a healthy truck raises nothing');
  });
});
