import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { Random } from '../../simulators/random.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { reportReliability, SOAK } from '../support/reliability.js';

const KILLS = 20 * SOAK;
const VEHICLE = 'crash-1';

describe('agent SIGKILLed at 20 random moments while producing 200 readings/s', () => {
  const dir = tempDir();
  const dataDir = join(dir, 'agent');
  let cloud: Cloud;
  let agent: Proc | undefined;

  const startAgent = () =>
    runFleet([
      'agent',
      '--vehicle',
      VEHICLE,
      '--mqtt-url',
      cloud.mqttUrl,
      '--data-dir',
      dataDir,
      '--sim-hz',
      '40',
      '--ops-port',
      '-1',
      '--reconnect-max-ms',
      '1000',
    ]);
  const maxStored = () => storedSeqs(cloud.detector, VEHICLE).at(-1) ?? 0;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
  });

  afterAll(async () => {
    if (agent) await kill(agent, 'SIGKILL');
    await cloud.stop();
  });

  it('keeps going after every restart and in the end has stored every seq', async () => {
    const started = Date.now();
    const rng = new Random(2024);
    for (let i = 0; i < KILLS; i++) {
      const before = maxStored();
      agent = startAgent();
      // It goes on: each incarnation gets readings through before it dies.
      await waitFor(`incarnation ${i + 1} publishing`, () => maxStored() > before, 15_000, 20);
      await new Promise((r) => setTimeout(r, 100 + rng.next() * 900));
      await kill(agent, 'SIGKILL');
    }
    agent = startAgent();
    await waitFor('the last incarnation publishing', () => maxStored() > 0, 15_000);
    await new Promise((r) => setTimeout(r, 1000));
    await kill(agent, 'SIGTERM'); // a clean stop drains the buffer before exiting
    assert.equal(agent.child.exitCode, 0, agent.stderr.join('\n'));

    const buffer = new Database(join(dataDir, `${VEHICLE}.buffer.db`), { readonly: true });
    const produced = Number((buffer.prepare("SELECT value FROM meta WHERE key = 'next_seq'").get() as { value: number }).value) - 1;
    const leftInBuffer = (buffer.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
    buffer.close();
    assert.ok(produced > KILLS * 20, `produced ${produced}`);
    await waitFor(`all ${produced} readings stored`, () => storedSeqs(cloud.detector, VEHICLE).length === produced - leftInBuffer, 15_000);
    assert.equal(leftInBuffer, 0, 'the clean stop sent everything');
    assert.deepEqual(
      storedSeqs(cloud.detector, VEHICLE),
      Array.from({ length: produced }, (_, i) => i + 1),
      'lost = 0',
    );
    const { duplicates } = await cloud.detector.store.counts();
    assert.ok(Number.isInteger(duplicates) && duplicates >= 0);
    reportReliability({
      kind: 'chaos',
      scenario: 'agent SIGKILLed at 200 readings/s',
      kills: { agent: KILLS },
      produced,
      stored: storedSeqs(cloud.detector, VEHICLE).length,
      lost: produced - new Set(storedSeqs(cloud.detector, VEHICLE)).size,
      duplicates,
      alertsExpected: 0,
      alertsRaised: (await cloud.detector.store.listAlerts()).length,
      notificationsPerAlert: null,
      durationS: Math.round((Date.now() - started) / 1000),
    });
  });
});
