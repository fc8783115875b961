import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { ClockStatus } from '../../agent/device-clock.js';
import type { SensorHealth } from '../../agent/sensor.js';
import { MIN_TS } from '../../shared/contract/validate.js';
import { Elm327Emulator } from '../../simulators/elm327-emulator.js';
import { NmeaGpsEmulator, type NmeaGpsEmulatorOptions } from '../../simulators/nmea-gps-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { Cloud } from '../support/cloud.js';
import { bootedWithoutRtcEnv } from '../support/faketime.js';
import { freePort, getJson, kill, runFleet, tempDir, waitFor, type Proc } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';
import { queryFile } from '../support/sqlite.js';

interface Health {
  buffered: number;
  clock: ClockStatus;
  sensors: Record<string, SensorHealth>;
}

const DAY_MS = 86_400_000;

/**
 * A truck agent process (`fleet agent --sensors hardware`) reading OBD-II and, when given a
 * receiver, GPS over socat ptys with the emulators on their far ends.
 */
class Truck {
  agent!: Proc;
  opsPort!: number;
  private gpsPty?: PtyPair;
  private obdPty!: PtyPair;
  gps?: NmeaGpsEmulator;
  private obd!: Elm327Emulator;

  constructor(
    private readonly dir: string,
    readonly vehicle: string,
    private readonly model: TruckModel,
  ) {}

  async start(opts: {
    mqttUrl: string;
    clock: string[];
    env?: NodeJS.ProcessEnv;
    gps?: Omit<NmeaGpsEmulatorOptions, 'path' | 'model'>;
  }): Promise<this> {
    this.obdPty = await ptyPair(this.dir, `${this.vehicle}-obd`);
    this.obd = new Elm327Emulator({ path: this.obdPty.b, model: this.model });
    await this.obd.open();
    const gpsArgs: string[] = [];
    if (opts.gps) {
      this.gpsPty = await ptyPair(this.dir, `${this.vehicle}-gps`);
      gpsArgs.push('--gps-path', this.gpsPty.a);
    }
    this.opsPort = await freePort();
    this.agent = runFleet(
      [
        'agent',
        '--vehicle',
        this.vehicle,
        '--sensors',
        'hardware',
        ...gpsArgs,
        '--obd-path',
        this.obdPty.a,
        '--obd-poll-ms',
        '300',
        ...opts.clock,
        '--mqtt-url',
        opts.mqttUrl,
        '--data-dir',
        join(this.dir, 'agent'),
        '--ops-port',
        String(this.opsPort),
      ],
      opts.env ?? {},
    );
    if (opts.gps) {
      // The receiver powers up with the agent and searches for satellites first.
      this.gps = new NmeaGpsEmulator({ path: this.gpsPty!.b, model: this.model, ...opts.gps });
      await this.gps.start();
    }
    return this;
  }

  async stop(): Promise<void> {
    if (this.agent) await kill(this.agent, 'SIGTERM');
    await this.gps?.stop();
    await this.obd?.close();
    await this.gpsPty?.stop();
    await this.obdPty?.stop();
  }

  async health(): Promise<Health> {
    return (await getJson<Health>(`http://127.0.0.1:${this.opsPort}/healthz`)).body;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.opsPort}/metrics`)).text();
  }

  /** Health once the agent answers and `ready` holds for it. */
  async healthWhen(what: string, ready: (h: Health) => boolean, timeoutMs = 15_000): Promise<Health> {
    return waitFor(
      what,
      async () => {
        const h = await this.health().catch(() => undefined);
        return h && ready(h) ? h : undefined;
      },
      timeoutMs,
      100,
    );
  }
}

interface StoredRow {
  seq: number;
  ts: number;
  clock: string;
  sensor: string;
}

function storedRows(cloud: Cloud, vehicle: string): StoredRow[] {
  return queryFile<StoredRow>(
    cloud.detector.store.location,
    'SELECT seq, ts, clock, sensor FROM readings WHERE vehicle = ? ORDER BY seq',
    vehicle,
  );
}

/**
 * A truck agent whose system clock starts at 1970 (no real-time clock, no NTP in reach) reads
 * OBD-II from boot and GPS, which takes seconds to get a fix. The readings it takes before the
 * fix must reach the cloud with their true UTC, flagged synced, none lost and none at 1970.
 */
describe('agent booted without a real-time clock', () => {
  const dir = tempDir();
  const startedAt = Date.now();
  const truck = new Truck(dir, 'rtc-less', new TruckModel({ seed: 5, startTs: startedAt }));
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
    await truck.start({
      mqttUrl: cloud.mqttUrl,
      clock: ['--clock', 'sync', '--clock-synced-file', join(dir, 'never-synced')],
      env: bootedWithoutRtcEnv(),
      gps: { noFixMs: 6000 },
    });
  });

  afterAll(async () => {
    await truck.stop();
    await cloud.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds its readings back while it has no trustworthy time', async () => {
    const h = await truck.healthWhen('OBD readings buffered before the GPS fix', (b) => b.buffered >= 3);
    const count = storedRows(cloud, truck.vehicle).length;
    // Read after the count: if the clock was still unsynced now, it was when the count was taken.
    const now = await truck.health();
    assert.equal(h.clock.synced, false);
    if (!now.clock.synced) assert.equal(count, 0, 'nothing left the truck stamped 1970');
    assert.deepEqual({ trust: h.clock.trust, holding: h.clock.holding }, { trust: 'sync', holding: true });
  });

  it('corrects them with the GPS time once the fix comes, and sends them all in order', async () => {
    await waitFor('GPS fixes stored', () => storedRows(cloud, truck.vehicle).filter((r) => r.sensor === 'gps').length >= 2, 30_000, 200);
    const rows = storedRows(cloud, truck.vehicle);
    const seqs = rows.map((r) => r.seq);
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => i + 1),
      'every reading from seq 1, none lost',
    );
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

    const h = await truck.health();
    assert.deepEqual(h.clock, { trust: 'sync', synced: true, source: 'gps', holding: false });
    const metrics = await truck.metrics();
    assert.match(metrics, /fleet_agent_clock_synced\{[^}]*vehicle="rtc-less"[^}]*\} 1/);
    const corrected = Number(/fleet_agent_readings_clock_corrected_total\{[^}]*how="exact"[^}]*\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(corrected >= 3, `corrected ${corrected} readings`);
  });
});

/**
 * The same truck with a receiver whose firmware is past its GPS week rollover: its dates are
 * 1024 weeks (19.6 years) back. The agent must not take 2007 for today.
 */
describe('agent booted without a real-time clock, its GPS past the week rollover', () => {
  const dir = tempDir();
  const startedAt = Date.now();
  const truck = new Truck(dir, 'rollover', new TruckModel({ seed: 6, startTs: startedAt }));
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
    await truck.start({
      mqttUrl: cloud.mqttUrl,
      clock: ['--clock', 'sync', '--clock-synced-file', join(dir, 'never-synced')],
      env: bootedWithoutRtcEnv(),
      gps: { profile: 'week-rollover', noFixMs: 2000 },
    });
  });

  afterAll(async () => {
    await truck.stop();
    await cloud.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores every reading, OBD and GPS, at its true time: the receiver date corrected by 1024 weeks', async () => {
    await waitFor('GPS fixes stored', () => storedRows(cloud, truck.vehicle).filter((r) => r.sensor === 'gps').length >= 2, 30_000, 200);
    const rows = storedRows(cloud, truck.vehicle);
    assert.ok(
      rows.some((r) => r.sensor !== 'gps'),
      'OBD readings too',
    );
    for (const r of rows) {
      assert.equal(r.clock, 'synced', `seq ${r.seq} ${r.sensor}`);
      assert.ok(r.ts >= startedAt - 2000 && r.ts <= Date.now() + 2000, `seq ${r.seq} ${r.sensor} at ${new Date(r.ts).toISOString()}`);
    }
    const h = await truck.health();
    assert.deepEqual(h.clock, { trust: 'sync', synced: true, source: 'gps', holding: false });
    assert.equal(h.sensors.gps0!.state, 'ok');
    assert.match(h.sensors.gps0!.detail ?? '', /receiver dates 1024 weeks behind, corrected \(GPS week rollover\)/);
  });
});

/**
 * A receiver whose date is wrong in a way no rollover explains (two days behind) on a truck
 * whose system clock NTP has set: the agent keeps the system clock and says why.
 */
describe('agent with an NTP-synced clock and a GPS two days behind', () => {
  const dir = tempDir();
  const startedAt = Date.now();
  const truck = new Truck(dir, 'gps-behind', new TruckModel({ seed: 8, startTs: startedAt }));
  let cloud: Cloud;

  beforeAll(async () => {
    cloud = await new Cloud({ dir }).start();
    const ntpSynced = join(dir, 'ntp-synced');
    writeFileSync(ntpSynced, '');
    await truck.start({
      mqttUrl: cloud.mqttUrl,
      clock: ['--clock', 'sync', '--clock-synced-file', ntpSynced],
      gps: { noFixMs: 1000, clockErrorMs: -2 * DAY_MS, proprietary: true },
    });
  });

  afterAll(async () => {
    await truck.stop();
    await cloud.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the GPS time: readings keep the system time, health and a counter say why', async () => {
    await waitFor('GPS readings stored', () => storedRows(cloud, truck.vehicle).filter((r) => r.sensor === 'gps').length >= 2, 15_000, 200);
    for (const r of storedRows(cloud, truck.vehicle)) {
      assert.equal(r.clock, 'synced');
      assert.ok(r.ts >= startedAt - 2000 && r.ts <= Date.now() + 2000, `seq ${r.seq} ${r.sensor} at ${new Date(r.ts).toISOString()}`);
    }
    const h = await truck.health();
    assert.match(h.clock.gpsRefused ?? '', /^GPS time \S+ is 2\.0 days behind the system clock \(NTP\)$/);
    assert.deepEqual({ synced: h.clock.synced, source: h.clock.source }, { synced: true, source: 'ntp' });
    assert.equal(h.sensors.gps0!.state, 'degraded');
    assert.match(
      h.sensors.gps0!.detail ?? '',
      /^GPS time refused: GPS time \S+ is 2\.0 days behind the system clock \(NTP\); samples take the system clock/,
    );
    const metrics = await truck.metrics();
    const refused = Number(/fleet_agent_gps_time_refused_total\{[^}]*vehicle="gps-behind"[^}]*\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(refused >= 2, `refused ${refused} GPS times`);
    // Its $PUBX, $PGLOR and $PMTK sentences: sound, not read, not refused.
    const ignored = Number(/fleet_agent_sensor_ignored_total\{[^}]*sensor="gps0"[^}]*\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(ignored >= 2 && ignored <= (await truck.health()).sensors.gps0!.ignored!, `ignored ${ignored}`);
    const log = truck.agent.lines.filter((l) => l.includes('GPS time refused'));
    assert.equal(log.length, 1, `one warning per episode: ${log.join('\n')}`);
    assert.equal((JSON.parse(log[0]!) as { vehicle: string }).vehicle, 'gps-behind');
  });
});

/**
 * A truck whose buffer holds readings from its last run (stamped by a trusted clock, not sent
 * yet) restarts without a real-time clock, and its receiver reports a date two days behind
 * them: time does not run backwards, so that GPS time is refused and the readings wait.
 */
describe('agent restarted without a real-time clock, its GPS behind its newest stored reading', () => {
  const dir = tempDir();
  const offline = `mqtt://127.0.0.1:1`;
  const model = new TruckModel({ seed: 9, startTs: Date.now() });
  mkdirSync(join(dir, 'agent'), { recursive: true });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses the GPS time, keeps holding the readings, and says why', async () => {
    const first = new Truck(dir, 'restarted', model);
    try {
      await first.start({ mqttUrl: offline, clock: ['--clock', 'system'] });
      await first.healthWhen('readings buffered by the first run', (h) => h.buffered >= 3);
    } finally {
      await first.stop();
    }
    const second = new Truck(dir, 'restarted', model);
    try {
      await second.start({
        mqttUrl: offline,
        clock: ['--clock', 'sync', '--clock-synced-file', join(dir, 'never-synced')],
        env: bootedWithoutRtcEnv(),
        gps: { noFixMs: 1000, clockErrorMs: -2 * DAY_MS },
      });
      const h = await second.healthWhen('the GPS time refused', (b) => b.clock.gpsRefused !== undefined);
      assert.match(h.clock.gpsRefused!, /^GPS time \S+ is 2\.0 days behind the newest stored reading \(\S+\)$/);
      assert.deepEqual({ synced: h.clock.synced, holding: h.clock.holding }, { synced: false, holding: true });
      assert.equal(h.sensors.gps0!.state, 'degraded');
    } finally {
      await second.stop();
    }
  });
});
