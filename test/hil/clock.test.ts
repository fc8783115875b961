import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ClockStatus } from '../../agent/device-clock.js';
import { MIN_TS } from '../../shared/contract/validate.js';
import { Elm327Emulator } from '../../simulators/elm327-emulator.js';
import { NmeaGpsEmulator } from '../../simulators/nmea-gps-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { Cloud } from '../support/cloud.js';
import { bootedWithoutRtcEnv } from '../support/faketime.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';

interface Health {
  buffered: number;
  clock: ClockStatus;
}

/**
 * A truck agent whose system clock starts at 1970 (no real-time clock, no NTP in reach) reads
 * OBD-II from boot and GPS, which takes seconds to get a fix. The readings it takes before the
 * fix must reach the cloud with their true UTC, flagged synced, none lost and none at 1970.
 */
describe('agent booted without a real-time clock', () => {
  const dir = tempDir();
  const NO_FIX_MS = 6000;
  let gps: PtyPair;
  let obd: PtyPair;
  let gpsEmulator: NmeaGpsEmulator;
  let obdEmulator: Elm327Emulator;
  let cloud: Cloud;
  let agent: Proc;
  let opsPort: number;
  const startedAt = Date.now();
  const model = new TruckModel({ seed: 5, startTs: startedAt });

  before(async () => {
    gps = await ptyPair(dir, 'gps');
    obd = await ptyPair(dir, 'obd');
    obdEmulator = new Elm327Emulator({ path: obd.b, model });
    await obdEmulator.open();
    cloud = await new Cloud({ dir }).start();
    opsPort = await freePort();
    agent = runFleet(
      ['agent', '--vehicle', 'rtc-less', '--sensors', 'hardware', '--gps-path', gps.a, '--obd-path', obd.a, '--obd-poll-ms', '300',
        '--clock', 'sync', '--clock-synced-file', join(dir, 'never-synced'), '--mqtt-url', cloud.mqttUrl, '--data-dir', join(dir, 'agent'),
        '--ops-port', String(opsPort)],
      bootedWithoutRtcEnv(),
    );
    // The receiver powers up with the agent and searches for satellites first.
    gpsEmulator = new NmeaGpsEmulator({ path: gps.b, model, noFixMs: NO_FIX_MS });
    await gpsEmulator.start();
  });

  after(async () => {
    await kill(agent, 'SIGTERM');
    await gpsEmulator.stop();
    await obdEmulator.close();
    await gps.stop();
    await obd.stop();
    await cloud.stop();
  });

  const stored = () =>
    cloud.detector.store.db.prepare("SELECT seq, ts, clock, sensor FROM readings WHERE vehicle = 'rtc-less' ORDER BY seq").all() as {
      seq: number; ts: number; clock: string; sensor: string;
    }[];
  const health = async () => (await getJson<Health>(`http://127.0.0.1:${opsPort}/healthz`)).body;

  it('holds its readings back while it has no trustworthy time', async () => {
    const h = await waitFor('OBD readings buffered before the GPS fix', async () => {
      const body = await health().catch(() => undefined);
      return body && body.buffered >= 3 ? body : undefined;
    }, 15_000, 100);
    const count = stored().length;
    // Read after the count: if the clock was still unsynced now, it was when the count was taken.
    const now = await health();
    assert.equal(h.clock.synced, false);
    if (!now.clock.synced) assert.equal(count, 0, 'nothing left the truck stamped 1970');
    assert.deepEqual({ trust: h.clock.trust, holding: h.clock.holding }, { trust: 'sync', holding: true });
  });

  it('corrects them with the GPS time once the fix comes, and sends them all in order', async () => {
    await waitFor('GPS fixes stored', () => stored().filter((r) => r.sensor === 'gps').length >= 2, 30_000, 200);
    const rows = stored();
    const seqs = rows.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => i + 1), 'every reading from seq 1, none lost');
    const firstFix = rows.find((r) => r.sensor === 'gps')!;
    const beforeFix = rows.filter((r) => r.seq < firstFix.seq);
    assert.ok(beforeFix.length >= 3, `OBD readings taken before the fix: ${beforeFix.length}`);
    for (const r of rows) {
      assert.equal(r.clock, 'synced', `seq ${r.seq} ${r.sensor} flagged synced`);
      assert.ok(r.ts >= MIN_TS, `seq ${r.seq} not stamped 1970: ${new Date(r.ts).toISOString()}`);
      // The receiver's UTC is the test machine's clock to the second it sends.
      assert.ok(r.ts >= startedAt - 2000 && r.ts <= Date.now() + 2000, `seq ${r.seq} at its true time: ${new Date(r.ts).toISOString()}`);
    }
    assert.ok(beforeFix.at(-1)!.ts <= firstFix.ts + 1000, 'readings before the fix are dated before it');
    const span = beforeFix.at(-1)!.ts - beforeFix[0]!.ts;
    assert.ok(span >= 1000, `their spacing survives the correction: ${span} ms`);

    const h = await health();
    assert.deepEqual(h.clock, { trust: 'sync', synced: true, source: 'gps', holding: false });
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    assert.match(metrics, /fleet_agent_clock_synced\{[^}]*vehicle="rtc-less"[^}]*\} 1/);
    const corrected = Number(/fleet_agent_readings_clock_corrected_total\{[^}]*how="exact"[^}]*\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(corrected >= 3, `corrected ${corrected} readings`);
  });
});
