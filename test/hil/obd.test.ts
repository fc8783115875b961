import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import Database from 'better-sqlite3';
import { SerialPort } from 'serialport';
import type { SensorHealth } from '../../agent/sensor.js';
import { Elm327, mode01Data } from '../../hardware/obd/elm327.js';
import { ObdSensor } from '../../hardware/obd/obd-sensor.js';
import { supportedPids } from '../../hardware/obd/pids.js';
import type { Sample, SensorId } from '../../shared/contract/reading.js';
import { Elm327Emulator, type EmulatedAnswer } from '../../simulators/elm327-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { freePort, getJson, kill, runFleet, sleep, tempDir, waitFor, type Proc } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';

const SEED = 327;
// Fifteen minutes into the drive: engine warm, truck moving, so no value is a trivial zero.
const START_TS = Date.now() - 15 * 60_000;
const TIMEOUT_MS = 400;
const POLL_MS = 200;
/** ATI finds the line speed; then the reset, the settings and the three supported-PID bitmaps. */
const INIT = ['ATI', 'ATZ', 'ATE0', 'ATL0', 'ATS0', 'ATH0', 'ATSP0', '0100', '0120', '0140'];
const SENSOR_OF: Record<string, SensorId> = {
  '0D': 'speed',
  '05': 'engine_temp',
  '0C': 'rpm',
  '04': 'engine_load',
  '0F': 'intake_temp',
  '46': 'ambient_temp',
  '2F': 'fuel_level',
  '42': 'module_voltage',
};
const OBD_SENSORS = Object.values(SENSOR_OF);
const FAST = ['010D', '0105', '010C', '0104'];
const SLOW = ['010F', '0146', '012F', '0142'];

/** What an exact SAE J1979 decoder makes of the emulator's bytes, written out here rather than shared with the driver. */
function physical(a: EmulatedAnswer): number {
  const [x, y] = a.bytes as [number, number];
  switch (a.pid) {
    case '0D':
      return x;
    case '05':
    case '0F':
    case '46':
      return x - 40;
    case '0C':
      return (256 * x + y) / 4;
    case '04':
    case '2F':
      return (100 * x) / 255;
    case '42':
      return (256 * x + y) / 1000;
    default:
      throw new Error(`no formula for PID ${a.pid}`);
  }
}

/** The model's resolution of each sensor, within which the emulator's encoding must stay. */
const RESOLUTION: Record<string, number> = {
  '0D': 1,
  '05': 1,
  '0C': 0.25,
  '04': 100 / 255,
  '0F': 1,
  '46': 1,
  '2F': 100 / 255,
  '42': 0.001,
};

describe('ObdSensor against an ELM327 emulator over a pty pair', () => {
  const dir = tempDir('fleet-obd-');
  const model = new TruckModel({ seed: SEED, startTs: START_TS });
  const samples: Sample[] = [];
  let pty: PtyPair;
  let emu: Elm327Emulator;
  let sensor: ObdSensor;
  const count = (sensor: SensorId, from = 0) => samples.slice(from).filter((s) => s.sensor === sensor).length;
  const commands = () => emu.exchanges.map((e) => e.command);
  const allSensorsFrom = (from: number) => OBD_SENSORS.every((id) => count(id, from) > 0);

  beforeAll(async () => {
    pty = await ptyPair(dir, 'obd');
    // Strapped for 9600 baud: the sensor's first guess, 38400, is misheard.
    emu = new Elm327Emulator({ path: pty.b, model, baudRate: 9600, hostPath: pty.a });
    await emu.open();
    sensor = new ObdSensor({ path: pty.a, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 200, stateFile: join(dir, 'obd.json') });
    await sensor.start((s) => samples.push(s));
  });

  afterAll(async () => {
    await sensor?.stop();
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds a 9600 baud adapter, then runs the init sequence in order, one command at a time', async () => {
    await waitFor('a sample of each fast sensor', () =>
      ['speed', 'engine_temp', 'rpm', 'engine_load'].every((id) => count(id as SensorId) > 0),
    );
    assert.deepEqual(commands().slice(0, INIT.length), INIT);
    assert.deepEqual(commands().slice(INIT.length, INIT.length + FAST.length), FAST);
    assert.equal(emu.misheard, 1, 'one probe at 38400 before 9600');
    const c = sensor.counters();
    assert.equal(c.baudRate, 9600);
    assert.equal(c.adapterVersion, 'v1.5');
    assert.equal(c.inits, 1);
    assert.equal(emu.interrupted, 0, 'the adapter never got a command while answering one');
    assert.equal(sensor.health().state, 'ok');
  });

  it("reads the vehicle's PIDs from the 0100, 0120 and 0140 bitmaps", () => {
    const first = emu.exchanges.find((e) => e.command === '0100')!;
    assert.match(first.answer!, /^SEARCHING\.\.\.\r4100[0-9A-F]{8}\r\r>$/);
    const pids = sensor.counters().vehiclePids ?? [];
    for (const pid of Object.keys(SENSOR_OF)) assert.ok(pids.includes(pid), `${pid} in ${pids}`);
    assert.deepEqual(sensor.counters().unsupported, []);
    // Echo is off from ATE0 on, and spaces from ATS0 on.
    assert.equal(emu.exchanges.find((e) => e.command === '010D')!.answer!.startsWith('410D'), true);
  });

  it('emits every PID as samples that match the model: coolant, speed, rpm and load each cycle, the others every few', async () => {
    await waitFor('three samples of every sensor', () => OBD_SENSORS.every((id) => count(id) >= 3), 15_000);
    const twin = new TruckModel({ seed: SEED, startTs: START_TS });
    for (const [pid, sensorId] of Object.entries(SENSOR_OF)) {
      const sent = emu.answered.filter((a) => a.pid === pid);
      const got = samples.filter((s) => s.sensor === sensorId);
      const n = Math.min(sent.length, got.length);
      for (let i = 0; i < n; i++)
        assert.ok(Math.abs(got[i]!.value - physical(sent[i]!)) <= 0.005 + 1e-9, `${sensorId}: ${got[i]!.value} vs ${physical(sent[i]!)}`);
      for (const s of got) {
        assert.equal(s.quality, 'good');
        assert.equal(s.clock, 'unsynced', 'stamped by the host clock, for the agent to vouch for');
      }
    }
    for (const a of [...emu.answered].sort((x, y) => x.ts - y.ts)) {
      twin.advance(a.ts);
      const truth = twin.reading(SENSOR_OF[a.pid]!)!.value;
      assert.ok(Math.abs(physical(a) - truth) <= RESOLUTION[a.pid]! / 2 + 1e-9, `${a.pid}: ${physical(a)} vs model ${truth}`);
    }
    const polled = commands().slice(INIT.length);
    const times = (c: string) => polled.filter((x) => x === c).length;
    const fast = Math.min(...FAST.map(times));
    for (const c of FAST) assert.ok(times(c) - fast <= 1, `${c} polled ${times(c)} times, the fast ones at least ${fast}`);
    for (const c of SLOW)
      assert.ok(times(c) >= 1 && times(c) <= Math.ceil(fast / SLOW.length) + 1, `${c} polled ${times(c)} times against ${fast}`);
  });

  it('keeps polling a PID that answers NO DATA, says so in health, and is ok once it answers again', async () => {
    const noDataBefore = sensor.counters().noData;
    model.inject({ kind: 'dropout', sensor: 'rpm', from: Date.now() });
    const degraded = await waitFor('health naming rpm', () =>
      /010C \(rpm\): NO DATA/.test(sensor.health().detail ?? '') ? sensor.health() : undefined,
    );
    assert.equal(degraded.state, 'degraded');
    assert.ok(sensor.counters().noData - noDataBefore >= 3);
    assert.deepEqual(sensor.counters().unsupported, [], 'NO DATA is no answer now, not an unsupported PID');
    const asked = commands().length;
    await waitFor(
      '010C asked again',
      () =>
        commands()
          .slice(asked)
          .filter((c) => c === '010C').length >= 2,
    );
    model.clearFaults();
    const rpmNow = count('rpm');
    await waitFor('rpm samples again', () => count('rpm') > rpmNow + 2);
    await waitFor('ok again', () => sensor.health().state === 'ok');
  });

  it('marks the all-ones and all-zeros encodings bad, and counts them apart from refused input', async () => {
    const rejected = sensor.health().rejected;
    const from = samples.length;
    emu.answerNext('41 0C FF FF', '010C');
    emu.answerNext('41 05 00', '0105');
    emu.answerNext('41 0D FF', '010D');
    const implausible = () => samples.slice(from).filter((s) => s.quality === 'bad');
    await waitFor('three samples marked bad', () => implausible().length === 3);
    assert.deepEqual(
      implausible()
        .map((s) => [s.sensor, s.value])
        .sort(),
      [
        ['engine_temp', -40],
        ['rpm', 16383.75],
        ['speed', 255],
      ],
    );
    await waitFor('the next answers, good again', () =>
      OBD_SENSORS.slice(0, 3).every((id) => samples.slice(from).some((s) => s.sensor === id && s.quality === 'good')),
    );
    assert.equal(sensor.counters().implausible, 3);
    assert.equal(sensor.health().implausible, 3);
    assert.equal(sensor.health().rejected, rejected, 'implausible is not corrupt input');
    await waitFor('ok again', () => sensor.health().state === 'ok');
  });

  it('is degraded on UNABLE TO CONNECT, bus and CAN errors and garbage, then ok again', async () => {
    const rejected = sensor.health().rejected;
    emu.answerNext('UNABLE TO CONNECT');
    const degraded = await waitFor('degraded', () => (sensor.health().state === 'degraded' ? sensor.health() : undefined));
    assert.match(degraded.detail!, /01[0-9A-F]{2}: UNABLE TO CONNECT/);
    await waitFor('ok again', () => sensor.health().state === 'ok');
    for (const text of ['BUS INIT: ...ERROR', 'CAN ERROR', '4\x01Z#\u00ff']) emu.answerNext(text);
    await waitFor('three more rejected', () => sensor.health().rejected === rejected + 4);
    await waitFor('ok after the errors', () => sensor.health().state === 'ok');
    assert.equal(sensor.health().rejected, rejected + 4);
  });

  it('counts timeouts while the adapter hangs, and recovers by itself', async () => {
    const timeouts = sensor.counters().timeouts;
    emu.hang(TIMEOUT_MS * 2);
    const degraded = await waitFor('degraded by a timeout', () => (sensor.health().state === 'degraded' ? sensor.health() : undefined));
    assert.match(degraded.detail!, /no answer within 400 ms/);
    const resumedFrom = samples.length;
    await waitFor('ok again', () => sensor.health().state === 'ok' && samples.length > resumedFrom);
    assert.ok(sensor.counters().timeouts - timeouts >= 2, `${sensor.counters().timeouts - timeouts} timeouts`);
    assert.equal(sensor.counters().inits, 1);
  });

  it('through a 30 s ignition-off stop: samples stop, health says engine off, and every PID resumes by itself', async () => {
    const keyOffAt = Date.now();
    emu.ignition = false;
    const off = await waitFor('engine off in health', () =>
      /engine off \/ ECU silent/.test(sensor.health().detail ?? '') ? sensor.health() : undefined,
    );
    assert.equal(off.state, 'degraded');
    const silentFrom = samples.length;
    await sleep(keyOffAt + 30_000 - Date.now());
    assert.equal(samples.length, silentFrom, 'no samples while the ECU is off');
    assert.match(sensor.health().detail!, /engine off \/ ECU silent/);
    assert.equal(sensor.counters().supplyVolts, 12.4);
    assert.deepEqual(sensor.counters().unsupported, [], 'no PID given up on');

    emu.ignition = true;
    await waitFor('samples of every PID again', () => allSensorsFrom(silentFrom), 15_000);
    await waitFor('ok again', () => sensor.health().state === 'ok');
    assert.equal(sensor.counters().inits, 1, 'back without a re-init');
    assert.equal(sensor.counters().supplyVolts, 14.1);
  });

  it('is down while unplugged; after a replug it re-initialises at the remembered rate and samples resume', async () => {
    await pty.stop();
    const down = await waitFor('down', () => (sensor.health().state === 'down' ? sensor.health() : undefined));
    assert.match(down.detail!, /lost|cannot open/);
    const replugAt = emu.exchanges.length;
    const misheard = emu.misheard;
    await pty.restart();
    await emu.open();
    await waitFor('a second init', () => sensor.counters().inits === 2, 5000);
    const after = samples.length;
    await waitFor('samples of each fast sensor again', () =>
      ['speed', 'engine_temp', 'rpm', 'engine_load'].every((id) => count(id as SensorId, after) > 0),
    );
    assert.deepEqual(commands().slice(replugAt, replugAt + INIT.length), INIT);
    assert.equal(emu.misheard, misheard, '9600 first this time');
    assert.deepEqual(sensor.counters().unsupported, []);
    assert.equal(sensor.health().state, 'ok');
    assert.equal(emu.interrupted, 0);
  });
});

describe('Elm327Emulator, driven by hand', () => {
  const dir = tempDir('fleet-elm-');
  let pty: PtyPair;
  let emu: Elm327Emulator;
  let port: SerialPort;
  let link: Elm327;

  beforeAll(async () => {
    pty = await ptyPair(dir, 'elm');
    emu = new Elm327Emulator({ path: pty.b, model: new TruckModel({ seed: 1, startTs: Date.now() }), pids: ['05', '0D', '46'] });
    await emu.open();
    port = new SerialPort({ path: pty.a, baudRate: 38400 });
    link = new Elm327((d) => port.write(d));
    port.on('data', (c: Buffer) => link.receive(c));
  });

  afterAll(async () => {
    if (port?.isOpen) await new Promise((r) => port.close(r));
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('echoes until ATE0, answers ? to what it does not know and NO DATA for PIDs the vehicle lacks', async () => {
    assert.equal((await link.send('ATZ', 1000)).raw, 'ATZ\rELM327 v1.5\r\r');
    assert.equal((await link.send('ATFOO', 1000)).status, 'unknown_command');
    assert.equal((await link.send('ATE0', 1000)).raw, 'ATE0\rOK\r\r');
    assert.equal((await link.send('ATH1', 1000)).raw, 'OK\r\r');
    const search = await link.send('0147', 1000);
    assert.deepEqual([search.status, search.searching], ['no_data', true]);
    const speed = await link.send('010D', 1000);
    assert.equal(speed.status === 'data' && speed.lines[0]!.startsWith('7E8 03 41 0D '), true, speed.raw);
    assert.equal((await link.send('0902', 1000)).status, 'no_data');
    assert.equal((await link.send('010C', 1000)).status, 'no_data');
    assert.equal((await link.send('ATH0', 1000)).status, 'ok');
  });

  it('chains its bitmaps as J1979 does: the last bit of each says the next range exists', async () => {
    const bitmap = async (base: string) => {
      const r = mode01Data(await link.send(`01${base}`, 1000), base, 4);
      return r.ok ? [...supportedPids(r.data, parseInt(base, 16))] : r.reason;
    };
    assert.deepEqual(await bitmap('00'), ['05', '0D', '20']);
    assert.deepEqual(await bitmap('20'), ['40']);
    assert.deepEqual(await bitmap('40'), ['46']);
    assert.equal((await link.send('0160', 1000)).status, 'no_data', 'no range after 0140');
  });

  it('with the key off: NO DATA to every vehicle request, the first after a search; ATRV reads the battery', async () => {
    const volts = async () => {
      const a = await link.send('ATRV', 1000);
      return a.status === 'voltage' ? a.volts : a.status;
    };
    assert.equal(await volts(), 14.1);
    emu.ignition = false;
    const began = Date.now();
    assert.equal((await link.send('010D', 2000)).status, 'no_data');
    assert.ok(Date.now() - began >= 100, 'the first request after the key goes off waits out the search');
    for (const c of ['0105', '0100', '0146']) assert.equal((await link.send(c, 1000)).status, 'no_data', c);
    assert.equal(await volts(), 12.4);
    emu.ignition = true;
    assert.equal((await link.send('010D', 1000)).status, 'data');
    assert.equal(await volts(), 14.1);
  });

  it('answers noise to a host at another line speed', async () => {
    const dir2 = tempDir('fleet-elm-baud-');
    const pair = await ptyPair(dir2, 'elm');
    const strapped = new Elm327Emulator({
      path: pair.b,
      model: new TruckModel({ seed: 1, startTs: Date.now() }),
      baudRate: 115200,
      hostPath: pair.a,
    });
    await strapped.open();
    const host = new SerialPort({ path: pair.a, baudRate: 38400 });
    const hostLink = new Elm327((d) => host.write(d));
    host.on('data', (c: Buffer) => hostLink.receive(c));
    try {
      const wrong = await hostLink.send('ATI', 300);
      assert.equal(wrong.status, 'timeout');
      assert.equal(strapped.misheard, 1);
      await new Promise((r) => host.update({ baudRate: 115200 }, r));
      assert.equal((await hostLink.send('ATI', 1000)).status, 'banner');
      assert.deepEqual(
        strapped.exchanges.map((e) => e.command),
        ['ATI'],
      );
    } finally {
      if (host.isOpen) await new Promise((r) => host.close(r));
      await strapped.close();
      await pair.stop();
      rmSync(dir2, { recursive: true, force: true });
    }
  });
});

describe('ObdSensor started before the adapter is plugged in', () => {
  const dir = tempDir('fleet-obd-late-');
  let pty: PtyPair | undefined;
  let emu: Elm327Emulator | undefined;
  const sensor = new ObdSensor({ path: `${dir}/late-a`, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 100 });

  afterAll(async () => {
    await sensor.stop();
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is down while the path is missing, then comes up by itself', async () => {
    const samples: Sample[] = [];
    await sensor.start((s) => samples.push(s));
    const down = await waitFor('down', () => (sensor.health().state === 'down' ? sensor.health() : undefined));
    assert.match(down.detail!, /cannot open .*late-a: .*retrying every 100 ms/);
    pty = await ptyPair(dir, 'late');
    emu = new Elm327Emulator({ path: pty.b, model: new TruckModel({ seed: 2, startTs: Date.now() }) });
    await emu.open();
    await waitFor('a sample', () => samples.length > 0);
    assert.equal(sensor.health().state, 'ok');
  });
});

describe('ObdSensor started with the ignition off', () => {
  const dir = tempDir('fleet-obd-key-');
  let pty: PtyPair;
  let emu: Elm327Emulator;
  const samples: Sample[] = [];
  let sensor: ObdSensor;

  beforeAll(async () => {
    pty = await ptyPair(dir, 'key');
    emu = new Elm327Emulator({ path: pty.b, model: new TruckModel({ seed: 3, startTs: Date.now() - 15 * 60_000 }) });
    emu.ignition = false;
    await emu.open();
    sensor = new ObdSensor({ path: pty.a, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 100 });
    await sensor.start((s) => samples.push(s));
  });

  afterAll(async () => {
    await sensor?.stop();
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says engine off / ECU silent, and reads every PID once the key is turned', async () => {
    const off = await waitFor('engine off in health', () =>
      /engine off \/ ECU silent/.test(sensor.health().detail ?? '') ? sensor.health() : undefined,
    );
    assert.equal(off.state, 'degraded');
    assert.equal(sensor.counters().inits, 1, 'the adapter itself answered the init');
    assert.equal(samples.length, 0);
    emu.ignition = true;
    await waitFor('samples of every PID', () => OBD_SENSORS.every((id) => samples.some((s) => s.sensor === id)), 15_000);
    await waitFor('ok', () => sensor.health().state === 'ok');
    assert.deepEqual(sensor.counters().unsupported, []);
  });
});

describe('ObdSensor against adapters at other line speeds', () => {
  const dir = tempDir('fleet-obd-baud-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** An adapter at `baudRate` on a fresh pty pair, and a sensor configured for 38400 that must find it. */
  async function adapterAt(baudRate: number, name: string) {
    const pty = await ptyPair(dir, name);
    const emu = new Elm327Emulator({
      path: pty.b,
      model: new TruckModel({ seed: 4, startTs: Date.now() - 15 * 60_000 }),
      baudRate,
      hostPath: pty.a,
    });
    await emu.open();
    const stateFile = join(dir, `${name}.json`);
    const run = async () => {
      const samples: Sample[] = [];
      const sensor = new ObdSensor({ path: pty.a, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 100, stateFile });
      await sensor.start((s) => samples.push(s));
      try {
        await waitFor(`a sample at ${baudRate} baud`, () => samples.length > 0, 15_000);
        return sensor.counters();
      } finally {
        await sensor.stop();
      }
    };
    const stop = async () => {
      await emu.close();
      await pty.stop();
    };
    return { emu, stateFile, run, stop };
  }

  it('finds an adapter at 115200, remembers the rate, and tries it first on the next start', async () => {
    const a = await adapterAt(115200, 'fast');
    try {
      assert.equal((await a.run()).baudRate, 115200);
      assert.equal(a.emu.misheard, 2, 'probed at 38400 and 9600 first');
      assert.deepEqual(JSON.parse(readFileSync(a.stateFile, 'utf8')), { baudRate: 115200 });
      assert.equal((await a.run()).baudRate, 115200);
      assert.equal(a.emu.misheard, 2, 'the remembered rate first on the next start');
    } finally {
      await a.stop();
    }
  });

  it('finds a clone at 500000 after the common rates', async () => {
    const a = await adapterAt(500_000, 'clone');
    try {
      assert.equal((await a.run()).baudRate, 500_000);
      assert.equal(a.emu.misheard, 5, '38400, 9600, 115200, 57600, 230400 first');
    } finally {
      await a.stop();
    }
  });
});

describe('the agent, its ELM327 adapter powered with the ignition off', () => {
  const dir = tempDir('fleet-obd-agent-');
  const vehicle = 'obd-1';
  const dataDir = join(dir, 'agent');
  let pty: PtyPair;
  let emu: Elm327Emulator;
  let agent: Proc;
  let opsPort: number;
  const health = async () => await getJson<{ sensors: Record<string, SensorHealth> }>(`http://127.0.0.1:${opsPort}/healthz`);
  /** The agent's log lines about its OBD sensor's health. */
  const obdLog = () =>
    agent.lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: number; msg: string; vehicle?: string; detail?: string })
      .filter((l) => l.msg === 'OBD sensor health');
  /** What the agent committed to its buffer: no gateway runs, so every reading stays there. */
  const buffered = (sql: string) => {
    const db = new Database(join(dataDir, `${vehicle}.buffer.db`), { readonly: true });
    try {
      return db.prepare(sql).all() as { sensor: string; value: number; quality: string }[];
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    pty = await ptyPair(dir, 'obd');
    emu = new Elm327Emulator({
      path: pty.b,
      model: new TruckModel({ seed: 12, startTs: Date.now() - 15 * 60_000 }),
      baudRate: 38400,
      hostPath: pty.a,
    });
    emu.ignition = false;
    await emu.open();
    opsPort = await freePort();
    agent = runFleet([
      'agent',
      '--vehicle',
      vehicle,
      '--sensors',
      'hardware',
      '--obd-path',
      pty.a,
      '--obd-poll-ms',
      '250',
      '--mqtt-url',
      `mqtt://127.0.0.1:${await freePort()}`,
      '--data-dir',
      dataDir,
      '--ops-port',
      String(opsPort),
    ]);
  });

  afterAll(async () => {
    await kill(agent, 'SIGTERM');
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports engine off / ECU silent on /healthz and stays healthy', async () => {
    const res = await waitFor(
      'obd0 engine off',
      async () => {
        const h = await health().catch(() => undefined);
        return h !== undefined && /engine off \/ ECU silent/.test(h.body.sensors.obd0?.detail ?? '') ? h : undefined;
      },
      20_000,
      200,
    );
    assert.equal(res.status, 200, 'a parked truck is no fault of the agent');
    assert.equal(res.body.sensors.obd0!.state, 'degraded');
    assert.deepEqual(buffered('SELECT sensor FROM readings'), []);
    const logged = await waitFor('the engine off logged', () => obdLog().find((l) => /engine off \/ ECU silent/.test(l.detail ?? '')));
    assert.equal(logged.vehicle, vehicle);
    assert.equal(logged.level, 40, 'a warning');
  });

  it('commits readings of every OBD-II sensor once the key is turned, and remembers the line speed', async () => {
    emu.ignition = true;
    const sensors = () => new Set(buffered('SELECT DISTINCT sensor FROM readings').map((r) => r.sensor));
    await waitFor('readings of every OBD-II sensor in the buffer', () => OBD_SENSORS.every((id) => sensors().has(id)), 20_000, 200);
    assert.deepEqual(buffered("SELECT sensor FROM readings WHERE quality <> 'good'"), []);
    assert.deepEqual(JSON.parse(readFileSync(join(dataDir, `${vehicle}.obd.json`), 'utf8')), { baudRate: 38400 });
  });

  it('commits an implausible coolant reading as bad and counts it on /metrics', async () => {
    emu.answerNext('41 05 00', '0105');
    const bad = await waitFor(
      'a bad reading',
      () => {
        const rows = buffered("SELECT sensor, value, quality FROM readings WHERE quality = 'bad'");
        return rows.length > 0 ? rows : undefined;
      },
      10_000,
      200,
    );
    assert.deepEqual(bad, [{ sensor: 'engine_temp', value: -40, quality: 'bad' }]);
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    assert.match(metrics, new RegExp(`fleet_agent_sensor_implausible_total\\{vehicle="${vehicle}",sensor="obd0"[^}]*\\} 1\\b`));
    const logged = await waitFor('the reason logged', () =>
      obdLog().find((l) => /0105 \(engine_temp\): -40 is the all-zeros encoding 00/.test(l.detail ?? '')),
    );
    assert.equal(logged.vehicle, vehicle);
    assert.match(metrics, new RegExp(`fleet_agent_sensor_rejected_total\\{vehicle="${vehicle}",sensor="obd0"[^}]*\\} 0\\b`));
  });
});
