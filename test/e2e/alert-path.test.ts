import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import type { StoredAlert } from '../../cloud/store/stored-alert.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { appendBoilingEngine } from '../support/alert-fixtures.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { freePort, getJson, kill, portOpen, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';

/**
 * The default 105 °C limit over 2-second windows (a healthy engine runs up to ~96 °C on a
 * climb): the simulated overheat crosses it about 35 s after onset.
 */
const FAST_RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

describe('overheat → detector → driver and console', () => {
  const dir = tempDir();
  let cloud: Cloud;
  let fleet: SimulatedFleet;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, rules: FAST_RULES, withConsole: true }).start();
    fleet = new SimulatedFleet(
      { count: 3, prefix: 'tk-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'trucks'), simHz: 5, overheat: { truck: 2, atS: 1 } },
      cloud.log,
    );
    await fleet.start();
  });

  afterAll(async () => {
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
    assert.ok(alert.observed > 105, `observed ${alert.observed}`);
    const cabLatency = shown.shownAt - alert.closedAt;
    assert.ok(cabLatency >= 0 && cabLatency < 2000, `cab latency ${cabLatency} ms`);

    const consoleUrl = cloud.console!.url;
    const listed = await waitFor(
      'the alert on /api/alerts',
      async () => {
        const { body } = await getJson<StoredAlert[]>(`${consoleUrl}/api/alerts`, {
          headers: { authorization: `Bearer ${DEV_CONSOLE_TOKEN}` },
        });
        return body.find((a) => a.id === alert.id);
      },
      2000,
      20,
    );
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
      await waitFor(
        `all ${produced} readings of ${agent.opts.vehicle} stored`,
        () => storedSeqs(cloud.detector, agent.opts.vehicle).length === produced,
        10_000,
      );
      const seqs = storedSeqs(cloud.detector, agent.opts.vehicle);
      assert.deepEqual(
        seqs,
        Array.from({ length: produced }, (_, i) => i + 1),
      );
    }
  });
});

/**
 * Gateway, detector and cabs as `fleet` processes. Two cabs go offline, each gets a live
 * alert while away, the gateway is restarted (losing whatever it held in memory), then one
 * cab comes back within the alert's freshness and the other after it.
 */
describe('driver alerts for cabs that were offline across a gateway restart', () => {
  const dir = tempDir('fleet-alert-restart-');
  const FRESHNESS_MS = 30_000;
  /** Far above anything the simulated engines reach: only the injected readings raise an alert. */
  const RULES = {
    windowMs: 1000,
    freshnessMs: FRESHNESS_MS,
    rules: [{ name: 'boil', type: 'threshold', sensor: 'engine_temp', above: 130, severity: 'critical' }],
  };
  const streamPath = join(dir, 'gateway', 'stream.db');
  const procs: Proc[] = [];
  let mqttPort: number;
  let gateway: Proc;

  const run = (args: string[]) => {
    const p = runFleet(args);
    procs.push(p);
    return p;
  };
  const startGateway = async () => {
    const p = run(['gateway', '--port', String(mqttPort), '--data-dir', join(dir, 'gateway'), '--ops-port', '-1']);
    await waitFor('the gateway listening', () => portOpen(mqttPort), 20_000);
    return p;
  };
  const startCab = async (vehicle: string) => {
    const p = run([
      'agent',
      '--vehicle',
      vehicle,
      '--mqtt-url',
      `mqtt://127.0.0.1:${mqttPort}`,
      '--data-dir',
      join(dir, vehicle),
      '--ops-port',
      '-1',
      '--edge-rules',
      'false',
      '--sim-hz',
      '1',
    ]);
    await waitFor(`${vehicle} connected`, () => p.lines.some((l) => l.includes('"msg":"connected to gateway"')), 20_000);
    return p;
  };
  const shown = (cab: Proc, alertId: string) =>
    cab.lines.filter((l) => l.includes('"msg":"driver alert"') && l.includes(`"alertId":"${alertId}"`)).length;
  const ledger = <T>(query: (db: Database.Database) => T): T => {
    const db = new Database(join(dir, 'cloud', 'fleet.db'), { readonly: true });
    try {
      return query(db);
    } finally {
      db.close();
    }
  };
  const alertOf = (vehicle: string) =>
    ledger((db) => (db.prepare('SELECT id FROM alerts WHERE vehicle = ?').get(vehicle) as { id: string } | undefined)?.id);
  const driverDelivery = (alertId: string) =>
    ledger(
      (db) =>
        (db.prepare("SELECT state FROM deliveries WHERE alert_id = ? AND channel = 'driver'").get(alertId) as { state: string } | undefined)
          ?.state,
    );

  /** Two seconds of a boiling engine, as the gateway would have appended them to the stream just now. */
  function boilingEngine(vehicle: string): void {
    appendBoilingEngine(streamPath, vehicle);
  }

  beforeAll(async () => {
    mqttPort = await freePort();
    const rulesFile = join(dir, 'rules.json');
    writeFileSync(rulesFile, JSON.stringify(RULES));
    gateway = await startGateway();
    const detector = run([
      'detector',
      '--stream-path',
      streamPath,
      '--data-dir',
      join(dir, 'cloud'),
      '--rules-file',
      rulesFile,
      '--mqtt-url',
      `mqtt://127.0.0.1:${mqttPort}`,
      '--ops-port',
      '-1',
    ]);
    await waitFor('the detector running', () => detector.lines.some((l) => l.includes('"msg":"detector started"')), 20_000);
  });

  afterAll(async () => {
    for (const p of procs) await kill(p, 'SIGKILL');
  });

  it('reaches the cab that is back within the freshness once, and expires for the one back later', async () => {
    // Each cab connects once, so the gateway keeps a session for it, then drops off the network.
    for (const vehicle of ['cab-soon', 'cab-late']) await kill(await startCab(vehicle), 'SIGKILL');
    // Event time moves on past the cabs' own last readings, so the injected ones are not late.
    await sleep(2500);
    boilingEngine('cab-soon');
    boilingEngine('cab-late');
    const [soon, late] = await waitFor(
      'both alerts raised',
      () => {
        const [soon, late] = [alertOf('cab-soon'), alertOf('cab-late')];
        return soon !== undefined && late !== undefined && ([soon, late] as const);
      },
      20_000,
    );
    await waitFor(
      'both alerts handed to the gateway',
      () => driverDelivery(soon) !== undefined && driverDelivery(late) !== undefined,
      20_000,
    );
    assert.notEqual(driverDelivery(soon), 'acknowledged', 'an offline cab cannot have acknowledged it');

    await kill(gateway, 'SIGKILL');
    gateway = await startGateway();

    const cabSoon = await startCab('cab-soon');
    await waitFor(`cab-soon shows ${soon}`, () => shown(cabSoon, soon) > 0, 20_000);
    await waitFor('the ledger says the cab acknowledged it', () => driverDelivery(soon) === 'acknowledged', 10_000);

    await waitFor('the alert of cab-late expired in the ledger', () => driverDelivery(late) === 'expired', FRESHNESS_MS + 20_000, 250);
    const cabLate = await startCab('cab-late');
    // The cab came back: had the alert still been pending, its online status would bring it within a second or two.
    await sleep(4000);
    assert.equal(shown(cabLate, late), 0, 'nothing stale reaches the cab');
    assert.equal(driverDelivery(late), 'expired');
    assert.equal(shown(cabSoon, soon), 1, 'shown once, however many copies were sent');
  });
});
