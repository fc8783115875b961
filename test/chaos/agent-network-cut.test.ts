import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { agentConfigSchema, agentOptions } from '../../agent/agent-config.js';
import { SimulatedDriverAlert } from '../../agent/driver-alert.js';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import type { Sample, SensorId } from '../../shared/contract/reading.js';
import { createLogger } from '../../shared/log.js';
import { simulateSamples } from '../../simulators/fast-forward.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { Cloud, storedSeqs } from '../support/cloud.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';
import { reportReliability, SOAK } from '../support/reliability.js';
import { queryFile, queryValue } from '../support/sqlite.js';
import { TcpProxy } from '../support/tcp-proxy.js';

const VEHICLE = 'cut-1';
/** Network cuts in a CI run, each ten minutes of the truck's time; a soak multiplies them. */
const CUTS = SOAK;
const CUT_MS = 10 * 60_000;
/** Connected driving before each cut and after the last. */
const LIVE_MS = 30_000;
/** Inside each cut the cooling fails for two minutes: one overheat episode, over long before the cut ends. */
const OVERHEAT = { fromMs: 2 * 60_000, toMs: 4 * 60_000 };
const RATES: Partial<Record<SensorId, number>> = { engine_temp: 10, container_temp: 10, speed: 10, rpm: 10, gps: 10 };
/** One rule, for the cloud and the cab alike, so the episode is the only alert to expect. */
const RULES = {
  windowMs: 10_000,
  freshnessMs: 60_000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};
/** Wall time each cut lasts at least, so the agent's reconnect attempts meet the dead link. */
const CUT_HOLD_MS = 2000;
/** Samples handed over between yields, so the agent's commit timer and socket I/O keep running. */
const CHUNK = 2000;

/**
 * The truck's sensors in simulated time: play(from, to) gives the agent every sample the
 * truck model has over [from, to), as fast as it takes them.
 */
class FastForwardSensor implements Sensor {
  readonly name = 'fast-forward';
  produced = 0;
  private emit?: (sample: Sample) => void;

  constructor(private readonly model: TruckModel) {}

  async start(emit: (sample: Sample) => void): Promise<void> {
    this.emit = emit;
  }

  async stop(): Promise<void> {
    this.emit = undefined;
  }

  health(): SensorHealth {
    return { state: 'ok', rejected: 0 };
  }

  async play(fromTs: number, toTs: number): Promise<void> {
    for (const sample of simulateSamples(this.model, fromTs, toTs, RATES)) {
      this.emit!(sample);
      if (++this.produced % CHUNK === 0) await new Promise(setImmediate);
    }
  }
}

/**
 * The real agent (buffer, publisher, MQTT link, edge rules) in this process, so that its
 * sensor can run on simulated time: the `fleet agent` process samples on the wall clock and
 * would need ten real minutes per cut. Between it and the gateway sits a TCP proxy the test
 * cuts like a dead zone: open connections reset, new ones hang. During each cut the truck
 * drives ten minutes, overheating in the middle; the cab hears of it from the edge rules at
 * once. Once the link is back the backlog drains: every reading is stored once and in order,
 * the detector raises the episode once, historical (the batches' headTs shows the backlog),
 * and the cloud sends nothing to the cab.
 */
describe('chaos: an agent cut off from the network for 10 minutes (simulated time)', () => {
  const dir = tempDir('fleet-chaos-');
  let cloud: Cloud;
  let proxy: TcpProxy;
  let agent: Agent;
  let driver: SimulatedDriverAlert;
  let sensor: FastForwardSensor;
  const t0 = Date.now() - CUTS * (LIVE_MS + CUT_MS) - LIVE_MS;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, rules: RULES }).start();
    proxy = await TcpProxy.start(Number(new URL(cloud.mqttUrl).port));
    const rulesFile = join(dir, 'edge-rules.json');
    writeFileSync(rulesFile, JSON.stringify(RULES));
    const model = new TruckModel({
      seed: 3,
      // Warmed up, as a truck on the road.
      startTs: t0 - 15 * 60_000,
      faults: Array.from({ length: CUTS }, (_, i) => {
        const cutStart = t0 + i * (LIVE_MS + CUT_MS) + LIVE_MS;
        return { kind: 'engine_overheat' as const, from: cutStart + OVERHEAT.fromMs, to: cutStart + OVERHEAT.toMs };
      }),
    });
    sensor = new FastForwardSensor(model);
    driver = new SimulatedDriverAlert();
    const config = agentConfigSchema.parse({
      vehicle: VEHICLE,
      mqttUrl: `mqtt://127.0.0.1:${proxy.port}`,
      dataDir: join(dir, 'agent'),
      opsPort: -1,
      reconnectBaseMs: 100,
      reconnectMaxMs: 500,
      rulesFile,
    });
    agent = new Agent(agentOptions(config), [sensor], driver, createLogger('test', { file: join(dir, 'agent.log') }));
    await agent.start();
  });

  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
    await cloud?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drains the backlog once and in order; one historical alert, shown in the cab once, by the truck itself', async () => {
    const started = Date.now();
    const stored = () => storedSeqs(cloud.detector, VEHICLE).length;
    const committed = () => agent.buffer.stats().nextSeq - 1;
    let ts = t0;
    for (let cut = 1; cut <= CUTS; cut++) {
      const before = stored();
      await sensor.play(ts, (ts += LIVE_MS));
      // Cut while batches are on their way, not on an idle link.
      await waitFor(`cut ${cut}: readings flowing`, () => stored() > before, 20_000, 10);
      proxy.cutOff();
      await waitFor(`cut ${cut}: the agent sees the link down`, () => !agent.link.connected, 10_000);
      const cutStart = ts;
      await sensor.play(ts, (ts += CUT_MS));
      await waitFor(`cut ${cut}: every sample committed`, () => committed() === sensor.produced, 20_000);
      await sleep(CUT_HOLD_MS);
      assert.equal(agent.link.connected, false, 'still cut off');
      const through = queryValue(
        cloud.detector.store.location,
        'SELECT count(*) FROM readings WHERE vehicle = ? AND ts >= ?',
        VEHICLE,
        cutStart,
      );
      assert.equal(through, 0, 'nothing of the cut went through');
      const shown = await waitFor(
        `cut ${cut}: the cab alert from the edge rules`,
        () => driver.shown.length === cut && driver.shown.at(-1)!,
        5000,
      );
      assert.equal(shown.alert.rule, 'engine-overheat');
      proxy.restore();
    }
    await sensor.play(ts, ts + LIVE_MS);
    await waitFor(`all ${sensor.produced} readings committed`, () => committed() === sensor.produced, 10_000);
    await waitFor(`all ${sensor.produced} readings stored`, () => stored() === sensor.produced, 60_000, 100);

    const seqs = storedSeqs(cloud.detector, VEHICLE);
    assert.deepEqual(
      seqs,
      Array.from({ length: sensor.produced }, (_, i) => i + 1),
      'every seq stored once',
    );
    const rows = queryFile<{ ts: number; receivedAt: number }>(
      cloud.detector.store.location,
      'SELECT ts, received_at AS receivedAt FROM readings WHERE vehicle = ? ORDER BY seq',
      VEHICLE,
    );
    assert.ok(
      rows.every((r, i) => i === 0 || (r.ts >= rows[i - 1]!.ts && r.receivedAt >= rows[i - 1]!.receivedAt)),
      'stored in seq order, seqs in event-time order',
    );

    await waitFor(`${CUTS} alerts raised`, async () => (await cloud.detector.store.listAlerts()).length >= CUTS, 10_000);
    const alerts = await cloud.detector.store.listAlerts();
    assert.equal(alerts.length, CUTS, `one per overheat: ${alerts.map((a) => a.id).join(', ')}`);
    const cabPerAlert = alerts.map((a) => driver.shown.filter((s) => s.alert.id === a.id).length);
    for (const alert of alerts) {
      assert.equal(alert.live, false, `${alert.id}: raised from the backlog, historical`);
      assert.equal(alert.driverSentAt, null, `${alert.id}: the cloud sent nothing to the cab`);
    }
    assert.deepEqual(
      cabPerAlert,
      alerts.map(() => 1),
      "the edge rules showed each episode in the cab once, under the cloud's id",
    );
    assert.equal(driver.shown.length, CUTS, 'and nothing else');

    const { readingsStored, duplicates } = await cloud.detector.store.counts();
    const lost = sensor.produced - readingsStored;
    reportReliability({
      kind: 'chaos',
      scenario: 'agent network cut 10 min',
      kills: {},
      produced: sensor.produced,
      stored: readingsStored,
      lost,
      duplicates,
      alertsExpected: CUTS,
      alertsRaised: alerts.length,
      notificationsPerAlert: Math.max(...cabPerAlert),
      durationS: Math.round((Date.now() - started) / 1000),
    });
    assert.equal(lost, 0);
  });
});
