import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import mqtt, { type MqttClient } from 'mqtt';
import { parseAlert, type Alert } from '../../shared/contract/alert.js';
import { topics } from '../../shared/contract/topics.js';
import { Cloud } from '../support/cloud.js';
import { sleep, tempDir, waitFor } from '../support/harness.js';

/** Two-second windows keep the test short; the path is the production one. */
const RULES = {
  windowMs: 2000,
  rules: [{ name: 'engine-overheat', type: 'threshold', sensor: 'engine_temp', above: 105, severity: 'critical' }],
};
const DAY_AHEAD = 23 * 3600_000;

/**
 * A truck speaking the JSON wire form by hand, so its clock can be made to lie: what a
 * receiver reporting a wrong date or a device clock jumping ahead does in the field.
 */
class HandTruck {
  readonly alerts: Alert[] = [];
  readonly rejected: { reason: string; detail: string }[] = [];
  private seq = 0;

  private constructor(
    readonly vehicle: string,
    private readonly client: MqttClient,
  ) {
    client.on('message', (topic, payload) => {
      if (topic === topics.alerts(vehicle)) this.alerts.push(parseAlert(payload));
      else if (topic === topics.rejected(vehicle)) this.rejected.push(JSON.parse(payload.toString()) as { reason: string; detail: string });
    });
  }

  static async connect(url: string, vehicle: string): Promise<HandTruck> {
    const client = await mqtt.connectAsync(url, { clientId: vehicle, protocolVersion: 4, clean: false, reconnectPeriod: 0 });
    await client.subscribeAsync([topics.alerts(vehicle), topics.rejected(vehicle)], { qos: 1 });
    return new HandTruck(vehicle, client);
  }

  /** One batch of engine readings at the given times; `headTs` defaults to the newest of them. */
  async send(readings: { ts: number; value: number }[], headTs?: number): Promise<number[]> {
    const batch = readings.map(({ ts, value }) => ({
      seq: ++this.seq,
      ts,
      clock: 'synced',
      sensor: 'engine_temp',
      value,
      quality: 'good',
    }));
    await this.client.publishAsync(
      topics.telemetry(this.vehicle),
      JSON.stringify({ headTs: headTs ?? batch.at(-1)!.ts, readings: batch }),
      { qos: 1 },
    );
    return batch.map((r) => r.seq);
  }

  /** Seconds of readings at 5 Hz, stamped now: a truck running normally. */
  async drive(seconds: number, value: number): Promise<void> {
    for (let s = 0; s < seconds; s++) {
      const now = Date.now();
      await this.send([0, 200, 400, 600, 800].map((ms) => ({ ts: now - 800 + ms, value })));
      await sleep(1000);
    }
  }

  close(): Promise<void> {
    return this.client.endAsync();
  }
}

describe('event time that cannot be poisoned: gateway → detector → cab', () => {
  const dir = tempDir();
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir, rules: RULES }).start();
  });

  afterAll(async () => {
    await cloud.stop();
  });

  it('refuses a reading stamped 23 h ahead with its reason, and the overheat after it still reaches the cab live', async () => {
    const truck = await HandTruck.connect(cloud.mqttUrl, 'tk-reading');
    await truck.drive(3, 90);
    const now = Date.now();
    const [, bad] = await truck.send([
      { ts: now, value: 90 },
      { ts: now + DAY_AHEAD, value: 90 },
      { ts: now + 100, value: 90 },
    ]);
    const notice = await waitFor('the rejection notice', () => truck.rejected[0]);
    assert.equal(notice.reason, 'clock_ahead');
    assert.match(notice.detail, new RegExp(`readings with seq ${bad} are stamped more than 300000 ms ahead of the gateway's clock`));
    // A 41-second overheat at 130 °C, in true time.
    await truck.drive(8, 130);
    const alert = await waitFor('the overheat in the cab', () => truck.alerts.find((a) => a.rule === 'engine-overheat'), 15_000);
    assert.equal(alert.live, true);
    assert.equal(alert.vehicle, 'tk-reading');
    assert.ok(Math.abs(alert.windowEnd - Date.now()) < 15_000, 'raised about now, not 23 hours on');
    // Refused, not lost: the payload is kept with its reason.
    const db = new Database(join(dir, 'gateway', 'dead-letters.db'), { readonly: true });
    const kept = db.prepare('SELECT reason FROM dead_letters WHERE vehicle = ?').all('tk-reading') as { reason: string }[];
    db.close();
    assert.ok(
      kept.some((r) => r.reason.startsWith('clock_ahead: ')),
      JSON.stringify(kept),
    );
    const metric = await cloud.gateway.registry.getSingleMetricAsString('fleet_gateway_refused_total');
    assert.match(metric, /fleet_gateway_refused_total\{reason="clock_ahead"[^}]*\} 1$/m);
    await truck.close();
  });

  it('replaces a batch headTs 23 h ahead, saying so, and later alerts still count as live for the driver', async () => {
    const truck = await HandTruck.connect(cloud.mqttUrl, 'tk-head');
    await truck.drive(3, 90);
    const now = Date.now();
    await truck.send([{ ts: now, value: 90 }], now + DAY_AHEAD);
    const notice = await waitFor('the rejection notice', () => truck.rejected[0]);
    assert.equal(notice.reason, 'clock_ahead');
    assert.match(
      notice.detail,
      /batch\.headTs \d+ is more than 300000 ms ahead of the gateway's clock .*; the receive time stands in for it/,
    );
    await truck.drive(8, 130);
    const alert = await waitFor('the overheat in the cab', () => truck.alerts.find((a) => a.rule === 'engine-overheat'), 15_000);
    assert.equal(alert.live, true);
    await truck.close();
  });
});
