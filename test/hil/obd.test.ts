import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { SerialPort } from 'serialport';
import { Elm327, mode01Data } from '../../hardware/obd/elm327.js';
import { ObdSensor } from '../../hardware/obd/obd-sensor.js';
import { supportedPids } from '../../hardware/obd/pids.js';
import type { Sample, SensorId } from '../../shared/contract/reading.js';
import { Elm327Emulator, type EmulatedAnswer } from '../../simulators/elm327-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { tempDir, waitFor } from '../support/harness.js';
import { ptyPair, type PtyPair } from '../support/pty.js';

const SEED = 327;
// Fifteen minutes into the drive: engine warm, truck moving, so no value is a trivial zero.
const START_TS = Date.now() - 15 * 60_000;
const TIMEOUT_MS = 400;
const POLL_MS = 200;
const INIT = ['ATZ', 'ATE0', 'ATL0', 'ATS0', 'ATH0', 'ATSP0', '0100'];
const PID_OF: Record<string, SensorId> = { '0D': 'speed', '05': 'engine_temp', '0C': 'rpm' };

/** What an exact decoder makes of the emulator's bytes, written out here rather than shared with the driver. */
function physical(a: EmulatedAnswer): number {
  const [x, y] = a.bytes as [number, number];
  return a.pid === '0D' ? x : a.pid === '05' ? x - 40 : (256 * x + y) / 4;
}

describe('ObdSensor against an ELM327 emulator over a pty pair', () => {
  const dir = tempDir('fleet-obd-');
  const model = new TruckModel({ seed: SEED, startTs: START_TS });
  const samples: Sample[] = [];
  let pty: PtyPair;
  let emu: Elm327Emulator;
  let sensor: ObdSensor;
  const count = (sensor: SensorId) => samples.filter((s) => s.sensor === sensor).length;
  const commands = () => emu.exchanges.map((e) => e.command);

  before(async () => {
    pty = await ptyPair(dir, 'obd');
    emu = new Elm327Emulator({ path: pty.b, model });
    await emu.open();
    // The first ATZ goes unanswered, as from an adapter strapped for 9600 baud; the retry,
    // a whole timeout later, falls after the hang.
    emu.hang(TIMEOUT_MS - 50);
    sensor = new ObdSensor({ path: pty.a, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 200 });
    await sensor.start((s) => samples.push(s));
  });

  after(async () => {
    await sensor?.stop();
    await emu?.close();
    await pty?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('falls back to 9600 baud, then runs the init sequence in order, one command at a time', async () => {
    await waitFor('a sample of each sensor', () => count('speed') > 0 && count('engine_temp') > 0 && count('rpm') > 0);
    assert.deepEqual(commands().slice(0, INIT.length + 1), ['ATZ', ...INIT]);
    assert.deepEqual(commands().slice(INIT.length + 1, INIT.length + 4), ['010D', '0105', '010C']);
    const c = sensor.counters();
    assert.equal(c.baudRate, 9600);
    assert.equal(c.timeouts, 1);
    assert.equal(c.adapterVersion, 'v1.5');
    assert.equal(c.inits, 1);
    assert.equal(emu.interrupted, 0, 'the adapter never got a command while answering one');
    assert.equal(sensor.health().state, 'ok');
  });

  it('reads the SEARCHING... answer to 0100 as the vehicle supported-PID bitmap', () => {
    const first = emu.exchanges.find((e) => e.command === '0100')!;
    assert.match(first.answer!, /^SEARCHING\.\.\.\r4100[0-9A-F]{8}\r\r>$/);
    assert.deepEqual(sensor.counters().vehiclePids?.sort(), ['05', '0C', '0D']);
    // Echo is off from ATE0 on, and spaces from ATS0 on.
    assert.equal(emu.exchanges.find((e) => e.command === '010D')!.answer!.startsWith('410D'), true);
  });

  it('emits speed, coolant and rpm samples that match the model', async () => {
    await waitFor('five polls of each PID', () => count('speed') >= 5 && count('engine_temp') >= 5 && count('rpm') >= 5);
    const twin = new TruckModel({ seed: SEED, startTs: START_TS });
    const resolution: Partial<Record<SensorId, number>> = { speed: 1, engine_temp: 1, rpm: 0.25, container_temp: 0, gps: 0 };
    for (const pid of Object.keys(PID_OF)) {
      const sensorId = PID_OF[pid]!;
      const sent = emu.answered.filter((a) => a.pid === pid);
      const got = samples.filter((s) => s.sensor === sensorId);
      const n = Math.min(sent.length, got.length);
      assert.deepEqual(got.slice(0, n).map((s) => s.value), sent.slice(0, n).map(physical), sensorId);
      for (const s of got) {
        assert.equal(s.quality, 'good');
        assert.equal(s.clock, 'unsynced', 'stamped by the host clock, for the agent to vouch for');
      }
    }
    for (const a of [...emu.answered].sort((x, y) => x.ts - y.ts)) {
      twin.advance(a.ts);
      const truth = twin.reading(PID_OF[a.pid]!)!.value;
      assert.ok(Math.abs(physical(a) - truth) <= resolution[PID_OF[a.pid]!]! / 2 + 1e-9, `${a.pid}: ${physical(a)} vs model ${truth}`);
    }
  });

  it('skips a PID answered NO DATA and gives up on it after repeats', async () => {
    const noDataBefore = sensor.counters().noData;
    model.inject({ kind: 'dropout', sensor: 'rpm', from: Date.now() });
    await waitFor('rpm given up on', () => sensor.counters().unsupported.includes('rpm'));
    assert.equal(sensor.counters().noData - noDataBefore, 3);
    const speedNow = count('speed');
    const rpmNow = count('rpm');
    await waitFor('more speed samples', () => count('speed') >= speedNow + 3);
    assert.equal(count('rpm'), rpmNow);
    assert.equal(commands().slice(-6).includes('010C'), false, 'rpm is no longer polled');
    assert.equal(sensor.health().state, 'ok');
    model.clearFaults();
  });

  it('is degraded on UNABLE TO CONNECT, bus and CAN errors and garbage, then ok again', async () => {
    const rejected = sensor.health().rejected;
    emu.answerNext('UNABLE TO CONNECT');
    const degraded = await waitFor('degraded', () => (sensor.health().state === 'degraded' ? sensor.health() : undefined));
    assert.match(degraded.detail!, /01(0D|05): UNABLE TO CONNECT/);
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

  it('is down while unplugged; after a replug it re-initialises and samples resume', async () => {
    await pty.stop();
    const down = await waitFor('down', () => (sensor.health().state === 'down' ? sensor.health() : undefined));
    assert.match(down.detail!, /lost|cannot open/);
    const replugAt = emu.exchanges.length;
    await pty.restart();
    await emu.open();
    await waitFor('a second init', () => sensor.counters().inits === 2, 5000);
    const after = samples.length;
    await waitFor('samples of each sensor again', () => {
      const fresh = samples.slice(after);
      return ['speed', 'engine_temp', 'rpm'].every((id) => fresh.some((s) => s.sensor === id));
    });
    assert.deepEqual(commands().slice(replugAt, replugAt + INIT.length), INIT);
    assert.deepEqual(sensor.counters().unsupported, [], 'a re-init forgets what was given up on');
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

  before(async () => {
    pty = await ptyPair(dir, 'elm');
    emu = new Elm327Emulator({ path: pty.b, model: new TruckModel({ seed: 1, startTs: Date.now() }), pids: ['05', '0D'] });
    await emu.open();
    port = new SerialPort({ path: pty.a, baudRate: 38400 });
    link = new Elm327((d) => port.write(d));
    port.on('data', (c: Buffer) => link.receive(c));
  });

  after(async () => {
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
    const search = await link.send('0146', 1000);
    assert.deepEqual([search.status, search.searching], ['no_data', true]);
    const speed = await link.send('010D', 1000);
    assert.equal(speed.status === 'data' && speed.lines[0]!.startsWith('7E8 03 41 0D '), true, speed.raw);
    assert.equal((await link.send('0902', 1000)).status, 'no_data');
    assert.equal((await link.send('010C', 1000)).status, 'no_data');
    const bitmap = mode01Data(await link.send('0100', 1000), '00', 4);
    assert.deepEqual(bitmap.ok && [...supportedPids(bitmap.data)], ['05', '0D']);
  });
});

describe('ObdSensor started before the adapter is plugged in', () => {
  const dir = tempDir('fleet-obd-late-');
  let pty: PtyPair | undefined;
  let emu: Elm327Emulator | undefined;
  const sensor = new ObdSensor({ path: `${dir}/late-a`, pollMs: POLL_MS, timeoutMs: TIMEOUT_MS, reopenMs: 100 });

  after(async () => {
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
    // Which baud rate it ends on depends on whether its ATZ beat the emulator's open (which flushes).
    assert.equal(sensor.health().state, 'ok');
  });
});
