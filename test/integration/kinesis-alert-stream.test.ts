import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { DescribeStreamSummaryCommand, KinesisClient } from '@aws-sdk/client-kinesis';
import { KinesisAlertStream } from '../../cloud/alerts/kinesis-alert-stream.js';
import { awsClientConfig } from '../../shared/aws-client-config.js';
import { alertId } from '../../shared/contract/alert.js';
import type { AlertEvent } from '../../shared/rules/engine.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { ALERT_T, hotAlert } from '../support/alert-fixtures.js';
import { Cloud } from '../support/cloud.js';
import { kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { queryFile } from '../support/sqlite.js';
import { startMoto, type MotoServer } from '../support/moto-server.js';

const REGION = 'us-east-1';
const T = ALERT_T;
const ALERT = hotAlert('bulk-000');
/** The 105 °C limit over 2-second windows: the simulated overheat crosses it about 35 s after onset. */
const FAST_RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};

/** overheat → detector → fleet.alerts on Kinesis (moto) → `fleet dispatcher` → the cab; no Kafka anywhere. */
describe('alert events on a Kinesis stream', () => {
  const dir = tempDir('fleet-kinesis-alerts-');
  let moto: MotoServer;
  let cloud: Cloud;
  let fleet: SimulatedFleet;
  let dispatcher: Proc | undefined;

  beforeAll(async () => {
    moto = await startMoto();
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
    cloud = await new Cloud({
      dir,
      rules: FAST_RULES,
      detector: { dispatch: 'kinesis', awsRegion: REGION, awsEndpoint: moto.endpoint },
    }).start();
  });

  afterAll(async () => {
    if (dispatcher) await kill(dispatcher, 'SIGKILL');
    await fleet?.stop();
    await cloud?.stop();
    await moto?.stop();
  });

  it("keeps each vehicle's events in order through a write larger than one PutRecords call", async () => {
    const opts = { region: REGION, endpoint: moto.endpoint, streamName: 'fleet.alerts-bulk' };
    const writer = new KinesisAlertStream(opts, cloud.log);
    await writer.start();
    // 600 vehicles, each raised then cleared in one write: two rounds of 600, each over one call's 500 records.
    const events: AlertEvent[] = Array.from({ length: 600 }, (_, i) => `bulk-${String(i).padStart(3, '0')}`).flatMap((vehicle) => {
      const id = alertId(vehicle, 'hot', T);
      return [
        { kind: 'raised' as const, alert: { ...ALERT, id, vehicle } },
        { kind: 'cleared' as const, alertId: id, vehicle, rule: 'hot', at: T + 60_000, reason: 'recovered' as const },
      ];
    });
    await writer.write([...events.filter((_, i) => i % 2 === 0), ...events.filter((_, i) => i % 2 === 1)]);
    await writer.close();

    const reader = new KinesisAlertStream({ ...opts, checkpointPath: join(dir, 'bulk.checkpoints.db'), idleReadMs: 100 }, cloud.log);
    const got: AlertEvent[] = [];
    await reader.consume(async (batch) => void got.push(...batch));
    try {
      await waitFor('all 1,200 events read back', () => got.length >= 1200, 60_000, 100);
    } finally {
      await reader.close();
    }
    assert.equal(got.length, 1200);
    const kinds = new Map<string, string[]>();
    for (const e of got) {
      const v = e.kind === 'cleared' ? e.vehicle : e.alert.vehicle;
      kinds.set(v, [...(kinds.get(v) ?? []), e.kind]);
    }
    assert.equal(kinds.size, 600);
    for (const [v, k] of kinds) assert.deepEqual(k, ['raised', 'cleared'], v);
  });

  it('carries an overheat alert to the cab through the dispatcher, once', async () => {
    const kinesis = new KinesisClient(awsClientConfig({ region: REGION, endpoint: moto.endpoint }));
    const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: STREAMS.alerts }));
    kinesis.destroy();
    assert.equal(summary.StreamDescriptionSummary?.StreamStatus, 'ACTIVE', 'the detector created fleet.alerts');

    const args = (dataDir: string) => [
      'dispatcher',
      '--stream',
      'kinesis',
      '--aws-region',
      REGION,
      '--aws-endpoint',
      moto.endpoint,
      '--mqtt-url',
      cloud.serviceMqttUrl,
      '--data-dir',
      dataDir,
      '--ops-port',
      '-1',
    ];
    dispatcher = runFleet(args(join(dir, 'dispatcher')));
    await waitFor('the dispatcher running', () => dispatcher!.lines.some((l) => l.includes('dispatcher running')), 30_000);

    fleet = new SimulatedFleet(
      { count: 3, prefix: 'ka-', mqttUrl: cloud.mqttUrl, dataDir: join(dir, 'trucks'), simHz: 5, overheat: { truck: 2, atS: 1 } },
      cloud.log,
    );
    await fleet.start();
    const hot = fleet.trucks[1]!;
    const { alert } = await waitFor('the driver alert in the cab of ka-02', () => hot.driver.shown[0], 120_000, 100);
    assert.equal(alert.vehicle, 'ka-02');
    assert.equal(alert.rule, 'engine-overheat');
    assert.equal(alert.live, true);
    assert.deepEqual(
      queryFile(cloud.detector.store.location, 'SELECT alert_id FROM deliveries'),
      [],
      'the detector itself told no channel',
    );

    // The dispatcher's ledger records the cab's acknowledgement.
    const ledgerPath = join(dir, 'dispatcher', 'ledger.db');
    await waitFor(
      'the delivery acknowledged in the ledger',
      () => {
        const db = new Database(ledgerPath, { readonly: true });
        try {
          return db.prepare("SELECT state FROM deliveries WHERE alert_id = ? AND channel = 'driver'").get(alert.id) as
            { state: string } | undefined;
        } finally {
          db.close();
        }
      },
      30_000,
      200,
    );
    await kill(dispatcher, 'SIGTERM');
    assert.equal(dispatcher.child.exitCode, 0, dispatcher.stderr.join('\n'));

    // A restarted dispatcher resumes after its checkpoint: no second copy in the cab.
    dispatcher = runFleet(args(join(dir, 'dispatcher')));
    await waitFor('the dispatcher running again', () => dispatcher!.lines.some((l) => l.includes('dispatcher running')), 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(new Set(hot.driver.shown.map((s) => s.alert.id)).size, hot.driver.shown.length, 'each alert shown once');
    assert.equal(fleet.trucks[0]!.driver.shown.length, 0);
    assert.equal(fleet.trucks[2]!.driver.shown.length, 0);
  });
});
