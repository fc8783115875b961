import { join } from 'node:path';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { afterAll, describe, it } from 'vitest';
import { SerialPort } from 'serialport';
import { FixCycle, type Fix } from '../../hardware/gps/fix-cycle.js';
import { GpsSensor } from '../../hardware/gps/gps-sensor.js';
import { checksum, hex2, parseLine, type NmeaSentence, type ParseResult } from '../../hardware/gps/nmea.js';
import { classify, describeAnswer, Elm327, mode01Data, type Elm327Answer } from '../../hardware/obd/elm327.js';
import { ObdSensor } from '../../hardware/obd/obd-sensor.js';
import { POLLED_PIDS } from '../../hardware/obd/pids.js';
import { FIXES, sensorSpec, type Sample } from '../../shared/contract/reading.js';
import { Elm327Emulator } from '../../simulators/elm327-emulator.js';
import { NmeaGpsEmulator } from '../../simulators/nmea-gps-emulator.js';
import { TruckModel } from '../../simulators/truck-model.js';
import { tempDir, waitFor } from '../support/harness.js';
import { ptyPair } from '../support/pty.js';
import { cases, FuzzTally, fuzzRandom, Mutator } from './mutators.js';
import { SHARED_DATA } from '../support/paths.js';

/** From dist/test/fuzz/ up to the repository's parent: real receivers' captures (see its README). */
const CAPTURES = join(SHARED_DATA, 'nmea');
const CAPTURED_LINES = readdirSync(CAPTURES)
  .filter((f) => f.endsWith('.log'))
  .flatMap((f) => readFileSync(join(CAPTURES, f), 'latin1').split('\n'))
  .map((l) => l.trimEnd())
  .filter((l) => l.startsWith('$'));
const NMEA_WORDS = [
  '$',
  '*',
  ',',
  '.',
  '-',
  '\r\n',
  '\n',
  'GP',
  'GN',
  'GGA',
  'RMC',
  'GNS',
  'GLL',
  'VTG',
  'GSA',
  'ZDA',
  'P',
  'N',
  'S',
  'E',
  'W',
  'A',
  'V',
  'NN',
  '99',
  '60',
  '00',
  '000000',
  '0000',
  '0000.0000',
  '235960',
  '999999.99',
  '1e9',
];
const ELM_ANSWERS = [
  'ATZ\r\r\rELM327 v1.5\r\r',
  'OK\r\r',
  'ATE0\rOK\r\r',
  'SEARCHING...\r41 00 BE 1F A8 13\r\r',
  '4100BE1FA813\r\r',
  '41 0D 32\r\r',
  '410D32\r\r',
  '7E8 03 41 0D 32\r\r',
  '7E803410D32\r\r',
  '41 05 7B\r\r',
  '41 0C 1A F8\r\r',
  '7E8 04 41 0C 1A F8\r7E9 04 41 0C 1A F0\r\r',
  '48 6B 10 41 0C 1A F8 7C\r\r',
  '41 04 80\r\r',
  '41 0F 3C\r\r',
  '41 46 32\r\r',
  '41 2F 66\r\r',
  '41 42 37 14\r\r',
  '41 0C FF FF\r\r',
  '41 05 00\r\r',
  '41 20 00 02 00 01\r\r',
  '41 40 44 00 00 00\r\r',
  'ATRV\r12.4V\r\r',
  '14.1V\r\r',
  'NO DATA\r\r',
  'UNABLE TO CONNECT\r\r',
  'BUS INIT: ...ERROR\r\r',
  'CAN ERROR\r\r',
  'STOPPED\r\r',
  '?\r\r',
  'BUFFER FULL\r\r',
  '<DATA ERROR\r\r',
  'ERR94\r\r',
];
const ELM_WORDS = [
  '41',
  '0D',
  '05',
  '0C',
  '04',
  '0F',
  '46',
  '2F',
  '42',
  '00',
  '20',
  '40',
  'V',
  '.',
  ' ',
  '\r',
  '\n',
  '\0',
  '>',
  'SEARCHING...',
  'NO DATA',
  'BUS INIT: ...',
  'ERROR',
  'ELM327 v',
  '?',
  'OK',
  '7E8',
  'FF',
];
const REFUSALS = new Set(['checksum', 'unknown', 'malformed']);
const COMMANDS = ['ATZ', 'ATE0', 'ATSP0', 'ATRV', '0100', '0120', '0140', ...POLLED_PIDS.map((p) => `01${p.pid}`)];

/** The sentence's checksum made right again, so that a mutation reaches the field parsers behind it. */
function resum(line: string): string {
  const start = line.lastIndexOf('$');
  const star = line.lastIndexOf('*');
  return start < 0 || star < start ? line : `${line.slice(0, star)}*${hex2(checksum(line.slice(start + 1, star)))}`;
}

function mutatedSentence(m: Mutator): string {
  const line = m.mutateText(m.pick(CAPTURED_LINES), { dictionary: NMEA_WORDS, splice: CAPTURED_LINES, maxRounds: 3 });
  return m.chance(0.7) ? resum(line) : line;
}

/** What downstream code relies on in an accepted sentence; a violation is a crash of the parser. */
function checkSentence(s: NmeaSentence): void {
  const within = (v: number | undefined, lo: number, hi: number, what: string) =>
    assert.ok(v === undefined || (Number.isFinite(v) && v >= lo && v <= hi), `${s.type} ${what} ${v}`);
  if (s.type === 'GSA') return assert.ok(FIXES.includes(s.fix));
  if (s.type !== 'VTG') within(s.timeMs, 0, 86_401_000, 'time');
  if (s.type === 'GGA' || s.type === 'RMC' || s.type === 'GNS' || s.type === 'GLL') {
    within(s.lat, -90, 90, 'lat');
    within(s.lon, -180, 180, 'lon');
  }
  if (s.type === 'RMC' || s.type === 'GNS' || s.type === 'GLL') assert.equal(typeof s.valid, 'boolean');
  if (s.type === 'GGA') assert.ok(Number.isInteger(s.quality) && s.quality >= 0 && s.quality <= 9);
  if (s.type === 'RMC') within(s.dateMs, Date.UTC(1980, 0, 1), Date.UTC(2080, 0, 1), 'date');
  if (s.type === 'ZDA') within(s.dateMs, Date.UTC(1980, 0, 1), Date.UTC(10_000, 0, 1), 'date');
  if (s.type === 'RMC' || s.type === 'VTG') {
    within(s.speedKmh, 0, Infinity, 'speed');
    assert.ok(s.courseDeg === undefined || (s.courseDeg >= 0 && s.courseDeg < 360), `course ${s.courseDeg}`);
  }
}

function checkFix(f: Fix): void {
  assert.ok(FIXES.includes(f.fix), `fix ${f.fix}`);
  assert.ok(f.lat === undefined || (f.lat >= -90 && f.lat <= 90), `fix lat ${f.lat}`);
  assert.ok(f.lon === undefined || (f.lon >= -180 && f.lon <= 180), `fix lon ${f.lon}`);
  assert.ok(f.utcMs === undefined || Number.isFinite(f.utcMs), `fix utc ${f.utcMs}`);
  // No position, speed or course without a fix.
  if (f.fix === 'none') assert.deepEqual([f.lat, f.lon, f.speedKmh, f.courseDeg], [undefined, undefined, undefined, undefined]);
}

/** A line's outcome: undefined (accepted, or no sentence at all) or the refusal's reason, after checking its shape. */
function lineOutcome(r: ParseResult | undefined): string | undefined {
  if (r === undefined) return undefined;
  if (r.ok) {
    checkSentence(r.sentence);
    assert.ok(r.placeholder === undefined || r.placeholder.trim() !== '', 'placeholder without a name');
    return undefined;
  }
  assert.ok(REFUSALS.has(r.reason), `unknown refusal ${r.reason}`);
  assert.ok(r.detail.trim() !== '', 'refusal without a detail');
  return r.reason;
}

/**
 * The reason an answer to `command` gives the OBD driver nothing, or undefined when it is what
 * was asked: a voltage for ATRV, OK or a banner for another AT command, the PID's data (or
 * the bitmap) for a request.
 */
function answerOutcome(a: Elm327Answer, command: string): string | undefined {
  assert.ok(describeAnswer(a).trim() !== '', `${a.status} described as nothing`);
  if (command === 'ATRV') return a.status === 'voltage' ? undefined : a.status;
  if (command.startsWith('AT')) return a.status === 'ok' || a.status === 'banner' ? undefined : a.status;
  if (a.status !== 'data') return a.status;
  const pid = { pid: command.slice(2), bytes: POLLED_PIDS.find((p) => `01${p.pid}` === command)?.bytes ?? 4 };
  const r = mode01Data(a, pid.pid, pid.bytes);
  if (!r.ok) {
    assert.ok(r.reason.trim() !== '', 'mode01Data refused without a reason');
    return 'data without the requested PID';
  }
  assert.equal(r.data.length, pid.bytes);
  assert.ok(
    r.data.every((b) => Number.isInteger(b) && b >= 0 && b <= 255),
    `data bytes ${r.data}`,
  );
  return undefined;
}

describe('fuzz: the NMEA driver in-process (parseLine, FixCycle)', () => {
  it('mutated sentences from real receivers: a checked sentence, or a refusal with its reason and detail', () => {
    const m = new Mutator(fuzzRandom('nmea lines'));
    const tally = new FuzzTally('NMEA sentence (parseLine)');
    for (let i = 0, n = cases(40_000); i < n; i++) {
      const line = m.chance(0.05) ? m.garbage(200).toString('latin1') : mutatedSentence(m);
      tally.check(line, () => lineOutcome(parseLine(line)));
    }
    assert.ok((tally.reasons.malformed ?? 0) > 0 && tally.accepted > 0, JSON.stringify(tally.reasons));
    tally.finish({ minCases: cases(40_000) });
  });

  it('mutated capture streams through the fix cycle: every fix within its ranges', () => {
    const m = new Mutator(fuzzRandom('nmea streams'));
    const tally = new FuzzTally('NMEA stream (FixCycle)');
    for (let i = 0, n = cases(3_000); i < n; i++) {
      const from = m.rnd.int(0, CAPTURED_LINES.length - 40);
      const lines = CAPTURED_LINES.slice(from, from + m.rnd.int(5, 40)).map((l) => (m.chance(0.2) ? mutatedSentence(m) : l));
      const stream = m.mutate(Buffer.from(lines.join('\r\n'), 'latin1'), { dictionary: NMEA_WORDS, maxRounds: 2 }).toString('latin1');
      tally.check(stream, () => {
        const cycle = new FixCycle();
        const refused: string[] = [];
        for (const line of stream.split('\n')) {
          const r = parseLine(line);
          const why = lineOutcome(r);
          if (why !== undefined) refused.push(why);
          else if (r?.ok) {
            const done = cycle.push(r.sentence);
            if (done) checkFix(done);
          }
        }
        const last = cycle.flush();
        if (last) checkFix(last);
        return refused.length > 0 ? `stream with ${refused.includes('malformed') ? 'malformed' : refused[0]} sentences` : undefined;
      });
    }
    tally.finish({ minCases: cases(3_000) });
  });
});

describe('fuzz: the ELM327 protocol in-process (classify, mode01Data, Elm327)', () => {
  it('mutated and random adapter answers: a known status, and PID data or a reason', () => {
    const m = new Mutator(fuzzRandom('elm327 answers'));
    const tally = new FuzzTally('ELM327 answer (classify, mode01Data)');
    for (let i = 0, n = cases(30_000); i < n; i++) {
      const text = m.chance(0.1)
        ? m.garbage(80).toString('latin1')
        : m.mutateText(m.pick(ELM_ANSWERS), { dictionary: ELM_WORDS, splice: ELM_ANSWERS });
      const command = m.pick(COMMANDS);
      tally.check(text, () => answerOutcome(classify(text, command), command));
    }
    assert.ok(tally.accepted > 0 && (tally.reasons.garbled ?? 0) > 0, JSON.stringify(tally.reasons));
    tally.finish({ minCases: cases(30_000) });
  });

  it('one session fed mutated answers in random pieces: every command answered, and back in step after', async () => {
    const m = new Mutator(fuzzRandom('elm327 session'));
    const tally = new FuzzTally('ELM327 session (Elm327)');
    const written: string[] = [];
    const link = new Elm327((d) => written.push(d));
    for (let i = 0, n = cases(5_000); i < n; i++) {
      const text = m.mutateText(m.pick(ELM_ANSWERS), { dictionary: ELM_WORDS, splice: ELM_ANSWERS });
      const command = m.pick(COMMANDS);
      await tally.checkAsync(text, async () => {
        const answer = link.send(command, 60_000);
        assert.equal(written.at(-1), `${command}\r`, 'the command went out');
        for (const piece of m.chunks(Buffer.from(`${text}>`, 'latin1'))) link.receive(m.chance(0.5) ? piece : piece.toString('latin1'));
        // Answered by the prompt at the latest: a session that waits for its 60 s timer has lost step.
        const settled = await Promise.race([answer, new Promise<undefined>((r) => setImmediate(() => r(undefined)))]);
        assert.ok(settled !== undefined, 'the answer did not end at the prompt');
        return answerOutcome(settled, command);
      });
    }
    const clean = link.send('010D', 60_000);
    link.receive('41 0D 32\r\r>');
    assert.deepEqual(mode01Data(await clean, '0D', 1), { ok: true, data: [0x32] });
    link.close();
    tally.finish({ minCases: cases(5_000) });
  });
});

describe('fuzz: the serial drivers on real ptys (GpsSensor, ObdSensor)', () => {
  const dir = tempDir('fleet-fuzz-drivers-');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('GpsSensor: mutated byte streams in random pieces are counted and refused, then a clean receiver is read', async () => {
    const m = new Mutator(fuzzRandom('gps pty'));
    const tally = new FuzzTally('NMEA serial line (GpsSensor)');
    const pty = await ptyPair(dir, 'gps');
    const samples: Sample[] = [];
    const sensor = new GpsSensor({ path: pty.a, staleAfterMs: 500, reopenMs: 100 });
    const healths: string[] = [];
    let watch: NodeJS.Timeout | undefined;
    try {
      await sensor.start((s) => samples.push(s));
      watch = setInterval(() => healths.push(JSON.stringify(sensor.health())), 20);
      const device = new SerialPort({ path: pty.b, baudRate: 9600, autoOpen: false });
      await new Promise<void>((resolve, reject) => device.open((err) => (err ? reject(err) : resolve())));
      // Every line shorter than the sensor's pending buffer and with no fix beyond a truck's
      // speed, so its refusals are exactly the lines parseLine refuses, and what it ignores the
      // sound lines it does not read or that hold a placeholder.
      let expected = 0;
      let ignored = 0;
      const lines: string[] = [];
      for (let n = cases(600); lines.length < n;) {
        const line = mutatedSentence(m).replace(/\n/g, '');
        const r = parseLine(line);
        if (line.length > 200 || (r?.ok && 'speedKmh' in r.sentence && (r.sentence.speedKmh ?? 0) > sensorSpec('gps').range[1])) continue;
        lines.push(line);
        tally.check(line, () => {
          const why = lineOutcome(r);
          if (why !== undefined && why !== 'unknown') expected++;
          if (why === 'unknown' || (r?.ok && r.placeholder !== undefined)) ignored++;
          return why;
        });
      }
      for (const piece of m.chunks(Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1'), lines.length)) {
        await new Promise<void>((resolve) => device.write(piece, () => device.drain(() => resolve())));
      }
      await waitFor(`the sensor to refuse ${expected} lines`, () => sensor.health().rejected >= expected, 15_000);
      await waitFor(`the sensor to ignore ${ignored} lines`, () => (sensor.health().ignored ?? 0) >= ignored, 5_000);
      assert.equal(sensor.health().rejected, expected, 'refused lines counted exactly once');
      assert.equal(sensor.health().ignored, ignored, 'ignored lines counted exactly once, apart from the refused');
      await new Promise<void>((resolve) => device.close(() => resolve()));

      // The receiver talks sense again: samples flow and the sensor is ok with no problem left.
      const emulator = new NmeaGpsEmulator({ path: pty.b, model: new TruckModel({ seed: 5, startTs: Date.now() - 200_000 }), noFixMs: 0 });
      await emulator.start();
      const before = samples.length;
      await waitFor('samples from the clean receiver', () => samples.length >= before + 2, 10_000);
      await waitFor('health ok without a problem', () => sensor.health().state === 'ok' && !sensor.health().detail, 5_000);
      assert.ok(!healths.some((h) => h.includes('internal error') || h.includes('"down"')), 'the sensor stayed up without internal errors');
      await emulator.stop();
    } finally {
      clearInterval(watch);
      await sensor.stop();
      await pty.stop();
    }
    tally.finish({ minCases: cases(600) });
  });

  it('ObdSensor: mutated adapter answers are refused one by one, then polling is clean again', async () => {
    const m = new Mutator(fuzzRandom('obd pty'));
    const tally = new FuzzTally('ELM327 serial line (ObdSensor)');
    const pty = await ptyPair(dir, 'obd');
    const emulator = new Elm327Emulator({
      path: pty.b,
      model: new TruckModel({ seed: 9, startTs: Date.now() - 900_000 }),
      latencyMs: 2,
      searchMs: 10,
    });
    await emulator.open();
    const samples: Sample[] = [];
    const sensor = new ObdSensor({ path: pty.a, pollMs: 20, timeoutMs: 1000, reopenMs: 100 });
    try {
      await sensor.start((s) => samples.push(s));
      await waitFor('the sensor ok', () => sensor.health().state === 'ok', 10_000);
      for (let i = 0, n = cases(300); i < n; i++) {
        // Without a prompt inside: an early `>` is the in-process session's case; here it would
        // move the rest to the next command and blur which answer was refused. Without NO DATA
        // too: the ECU having nothing to say now is no refusal, so it is not counted as one.
        let text: string;
        do text = m.mutateText(m.pick(ELM_ANSWERS), { dictionary: ELM_WORDS, splice: ELM_ANSWERS }).replace(/>/g, '');
        while (classify(text).status === 'no_data');
        // The next command the adapter takes gets this answer (framed with its prompt).
        const injectedAt = emulator.exchanges.length;
        const rejectedBefore = sensor.health().rejected;
        emulator.answerNext(text);
        await tally.checkAsync(text, async () => {
          const exchange = await waitFor(
            'the injected answer',
            () => emulator.exchanges[injectedAt]?.answer !== undefined && emulator.exchanges[injectedAt],
            5000,
            2,
          );
          const answer = classify(exchange.answer!.slice(0, exchange.answer!.indexOf('>')), exchange.command);
          const why = answerOutcome(answer, exchange.command);
          const want = rejectedBefore + (why === undefined ? 0 : 1);
          await waitFor(`rejected ${want} after ${JSON.stringify(exchange)}`, () => sensor.health().rejected >= want, 2000, 2);
          assert.equal(sensor.health().rejected, want, `refusals counted for ${JSON.stringify(exchange)}`);
          assert.ok(!/sensor loop failed/.test(sensor.health().detail ?? ''), sensor.health().detail);
          return why;
        });
      }
      const count = (sensor: string) => samples.filter((s) => s.sensor === sensor).length;
      const before = POLLED_PIDS.map((p) => count(p.sensor));
      await waitFor('clean polls of every PID', () => POLLED_PIDS.every((p, i) => count(p.sensor) > before[i]! + 2), 10_000);
      await waitFor('health ok again', () => sensor.health().state === 'ok', 5_000);
      assert.deepEqual(sensor.counters().unsupported, []);
    } finally {
      await sensor.stop();
      await emulator.close();
      await pty.stop();
    }
    tally.finish({ minCases: cases(300) });
  });
});
