import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, it } from 'vitest';
import { probeOrder, readRememberedBaud, rememberBaud } from '../../../hardware/obd/baud-rates.js';
import { EcuSilence, engineRunning, OFF_PROBE_CYCLES } from '../../../hardware/obd/ignition.js';
import { duePids, POLLED_PIDS } from '../../../hardware/obd/pids.js';

describe('probeOrder', () => {
  it('tries the remembered rate, the configured one, then the common rates, each once', () => {
    assert.deepEqual(probeOrder(undefined, 38400), [38400, 9600, 115200, 57600, 230400, 500000]);
    assert.deepEqual(probeOrder(115200, 38400), [115200, 38400, 9600, 57600, 230400, 500000]);
    assert.deepEqual(probeOrder(57600, 19200), [57600, 19200, 38400, 9600, 115200, 230400, 500000]);
  });
});

describe('the remembered baud rate file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-obd-baud-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is written where the directory does not exist yet, and read back', () => {
    const path = join(dir, 'nested', 'truck.obd.json');
    assert.equal(readRememberedBaud(path), undefined, 'no file yet: nothing remembered, no complaint');
    rememberBaud(path, 115200);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), { baudRate: 115200 });
    assert.deepEqual(readRememberedBaud(path), { baudRate: 115200 });
  });

  it('names what is wrong with a file it cannot use', () => {
    const path = join(dir, 'bad.json');
    const problem = () => {
      const r = readRememberedBaud(path);
      return r !== undefined && 'problem' in r ? r.problem : JSON.stringify(r);
    };
    writeFileSync(path, '{"baudRate": ');
    assert.match(problem(), /bad\.json: not JSON/);
    writeFileSync(path, '{"baudRate": -5}');
    assert.match(problem(), /bad\.json: baudRate must be a whole number of baud in \[300, 4000000\], got -5/);
    assert.throws(() => rememberBaud(join(path, 'under-a-file.json'), 9600), /ENOTDIR|EEXIST/);
  });
});

describe('engineRunning', () => {
  it('reads the alternator charging from the supply voltage of a 12 V or a 24 V vehicle', () => {
    for (const v of [13.5, 14.1, 14.7, 27.6, 28.4]) assert.equal(engineRunning(v), true, `${v} V`);
    for (const v of [11.8, 12.4, 12.9, 24.6, 25.4]) assert.equal(engineRunning(v), false, `${v} V`);
  });
});

describe('EcuSilence', () => {
  it('begins after two quiet cycles in a row, or one when the supply voltage says the engine is off', () => {
    const s = new EcuSilence();
    assert.equal(s.cycle(true, 1000), false);
    assert.equal(s.cycle(false, 2000), false, 'an answer in between starts the count again');
    assert.equal(s.cycle(true, 3000), false);
    assert.equal(s.cycle(true, 4000), true);
    assert.equal(s.since, 4000);
    assert.equal(s.cycle(true, 5000), false, 'already silent');

    const off = new EcuSilence();
    assert.equal(off.cycle(true, 1000, true), true);
    assert.equal(off.since, 1000);
  });

  it('asks the ECU every cycle unless the voltage says the engine is off, then every few', () => {
    const s = new EcuSilence();
    s.begin(0);
    assert.deepEqual([s.probeDue(undefined), s.probeDue(false), s.probeDue(undefined)], [true, true, true]);
    const asked = Array.from({ length: 3 * OFF_PROBE_CYCLES }, () => s.probeDue(true));
    assert.equal(asked.filter(Boolean).length, 3);
    assert.equal(asked.lastIndexOf(true), 3 * OFF_PROBE_CYCLES - 1);
    assert.equal(s.probeDue(false), true, 'the key turned: at once');
  });

  it('ends when the ECU answers, saying for how long it was silent', () => {
    const s = new EcuSilence();
    s.begin(1000);
    assert.equal(s.end(31_000), 30_000);
    assert.equal(s.since, undefined);
    assert.equal(s.end(32_000), undefined);
    assert.equal(s.cycle(true, 33_000), false, 'the quiet count starts afresh');
  });
});

describe('duePids', () => {
  const fast = ['0D', '05', '0C', '04'];
  const pids = (cycle: number, from = POLLED_PIDS) => duePids(from, cycle).map((p) => p.pid);

  it('polls coolant, speed, rpm and load every cycle and one slow PID per cycle in turn', () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((c) => pids(c)),
      [
        [...fast, '0F'],
        [...fast, '46'],
        [...fast, '2F'],
        [...fast, '42'],
        [...fast, '0F'],
      ],
    );
  });

  it('polls only what it is given', () => {
    const some = POLLED_PIDS.filter((p) => ['05', '0D', '46'].includes(p.pid));
    assert.deepEqual(
      [pids(0, some), pids(1, some)],
      [
        ['0D', '05', '46'],
        ['0D', '05', '46'],
      ],
    );
    const fastOnly = POLLED_PIDS.filter((p) => fast.includes(p.pid));
    assert.deepEqual(pids(7, fastOnly), fast);
  });
});
