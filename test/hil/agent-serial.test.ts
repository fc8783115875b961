import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { SensorHealth } from '../../agent/sensor.js';
import { Elm327Emulator } from '../../simulators/elm327-emulator.js';
import { NmeaGpsEmulator } from '../../simulators/nmea-gps-emulator.js';
import { OneWireFixture } from '../../simulators/onewire-fixture.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { Cloud } from '../support/cloud.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';
import { queryFile, queryValue } from '../support/sqlite.js';

/**
 * The agent as it runs in a truck — the same `fleet agent` entry point, its config naming
 * serial devices — with a GPS receiver and an ELM327 adapter emulated on the far ends of
 * real pseudo-terminals, and its readings reaching the gateway and the detector's store.
 */
describe('agent with serial GPS and OBD-II over pseudo-terminals and a 1-Wire probe', () => {
  const dir = tempDir();
  let gps: PtyPair;
  let obd: PtyPair;
  let gpsEmulator: NmeaGpsEmulator;
  let obdEmulator: Elm327Emulator;
  let cloud: Cloud;
  let agent: Proc;
  let opsPort: number;
  const model = new TruckModel({ seed: 11, startTs: Date.now() - 15 * 60_000 });

  beforeAll(async () => {
    gps = await ptyPair(dir, 'gps');
    obd = await ptyPair(dir, 'obd');
    gpsEmulator = new NmeaGpsEmulator({ path: gps.b, model, noFixMs: 1000 });
    await gpsEmulator.start();
    obdEmulator = new Elm327Emulator({ path: obd.b, model });
    await obdEmulator.open();
    cloud = await new Cloud({ dir }).start();
    opsPort = await freePort();
    const bus = new OneWireFixture(join(dir, 'w1'));
    bus.temperature('28-0000075a1b2c', 4.5);
    agent = runFleet([
      'agent',
      '--vehicle',
      'hil-1',
      '--sensors',
      'hardware',
      '--gps-path',
      gps.a,
      '--obd-path',
      obd.a,
      '--obd-poll-ms',
      '500',
      '--one-wire',
      'true',
      '--one-wire-root',
      join(dir, 'w1'),
      '--one-wire-interval-ms',
      '1000',
      '--mqtt-url',
      cloud.mqttUrl,
      '--data-dir',
      join(dir, 'agent'),
      '--ops-port',
      String(opsPort),
    ]);
  });

  afterAll(async () => {
    await kill(agent, 'SIGTERM');
    await gpsEmulator.stop();
    await obdEmulator.close();
    await gps.stop();
    await obd.stop();
    await cloud.stop();
  });

  it('stores GPS fixes, speed, coolant temperature, rpm and cargo temperature read from the devices', async () => {
    const bySensor = () =>
      new Map(
        queryFile<{ sensor: string; n: number; mean: number }>(
          cloud.detector.store.location,
          "SELECT sensor, count(*) AS n, avg(value) AS mean FROM readings WHERE vehicle = 'hil-1' GROUP BY sensor",
        ).map((r) => [r.sensor, r]),
      );
    await waitFor(
      'readings of every device sensor stored',
      () => ['gps', 'speed', 'engine_temp', 'rpm', 'container_temp'].every((s) => (bySensor().get(s)?.n ?? 0) >= 3),
      30_000,
      200,
    );
    const engine = bySensor().get('engine_temp')!;
    assert.ok(
      Math.abs(engine.mean - model.state().engineTemp) < 5,
      `coolant ${engine.mean} °C near the model's ${model.state().engineTemp}`,
    );
    assert.equal(bySensor().get('container_temp')!.mean, 4.5);
    const [fix] = queryFile<{ lat: number; lon: number; fix: string; quality: string }>(
      cloud.detector.store.location,
      "SELECT lat, lon, fix, quality FROM readings WHERE vehicle = 'hil-1' AND sensor = 'gps' ORDER BY seq DESC LIMIT 1",
    );
    assert.ok(fix, 'a position stored');
    assert.equal(fix.fix, '3d');
    assert.equal(fix.quality, 'good');
    assert.ok(Math.abs(fix.lat - model.state().lat) < 0.01 && Math.abs(fix.lon - model.state().lon) < 0.01, 'position follows the truck');

    const { body } = await getJson<{ sensors: Record<string, SensorHealth> }>(`http://127.0.0.1:${opsPort}/healthz`);
    assert.equal(body.sensors.gps0?.state, 'ok');
    assert.equal(body.sensors.obd0?.state, 'ok');
    assert.equal(body.sensors.w1?.state, 'ok');
  });

  it('reports an unplugged adapter on its health endpoint and resumes when it is back', async () => {
    await obd.stop();
    await waitFor(
      'obd0 down',
      async () => {
        const { body } = await getJson<{ sensors: Record<string, SensorHealth> }>(`http://127.0.0.1:${opsPort}/healthz`);
        return body.sensors.obd0?.state === 'down' || body.sensors.obd0?.state === 'degraded';
      },
      15_000,
      200,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    assert.match(metrics, /fleet_agent_sensor_state\{[^}]*sensor="obd0"[^}]*state="(down|degraded)"[^}]*\} 1/);
    await obd.restart();
    await obdEmulator.close();
    obdEmulator = new Elm327Emulator({ path: obd.b, model });
    await obdEmulator.open();
    const count = () =>
      queryValue<number>(cloud.detector.store.location, "SELECT count(*) FROM readings WHERE vehicle = 'hil-1' AND sensor = 'rpm'")!;
    const before = count();
    await waitFor('rpm readings again', () => count() > before + 2, 30_000, 200);
    const { body } = await getJson<{ sensors: Record<string, SensorHealth> }>(`http://127.0.0.1:${opsPort}/healthz`);
    assert.equal(body.sensors.obd0?.state, 'ok');
  });
});
