import assert from 'node:assert/strict';
import { describe, it } from 'vitest';
import { classify, describeAnswer, Elm327, mode01Data, type Elm327Answer, type Elm327Status } from '../../../hardware/obd/elm327.js';
import { POLLED_PIDS, readPid, supportedPids } from '../../../hardware/obd/pids.js';
import { Random } from '../../../simulators/random.js';

const pidRead = (text: string, pid: string) => {
  const p = POLLED_PIDS.find((x) => x.pid === pid)!;
  const r = mode01Data(classify(text, `01${pid}`), pid, p.bytes);
  return r.ok ? readPid(p, r.data) : r.reason;
};
const decode = (text: string, pid: string) => {
  const r = pidRead(text, pid);
  return typeof r === 'string' ? r : r.value;
};

describe('classify', () => {
  const cases: [string, Elm327Status, string][] = [
    ['OK\r\r', 'ok', 'OK'],
    ['ATE0\rOK\r\r', 'ok', 'OK'],
    ['ATZ\r\r\rELM327 v1.5\r\r', 'banner', 'ELM327 v1.5'],
    ['\u00fc\r\rELM327 v2.1\r\r', 'banner', 'ELM327 v2.1'],
    ['NO DATA\r\r', 'no_data', 'NO DATA'],
    ['NODATA\r\r', 'no_data', 'NO DATA'],
    ['UNABLE TO CONNECT\r\r', 'unable_to_connect', 'UNABLE TO CONNECT'],
    ['BUS INIT: ...ERROR\r\r', 'bus_error', 'BUS INIT: ...ERROR'],
    ['BUSINIT: ERROR\r\r', 'bus_error', 'BUSINIT: ERROR'],
    ['BUS BUSY\r\r', 'bus_error', 'BUS BUSY'],
    ['FB ERROR\r\r', 'bus_error', 'FB ERROR'],
    ['<DATA ERROR\r\r', 'bus_error', '<DATA ERROR'],
    ['ERR94\r\r', 'bus_error', 'ERR94'],
    ['CAN ERROR\r\r', 'can_error', 'CAN ERROR'],
    ['STOPPED\r\r', 'stopped', 'STOPPED'],
    ['?\r\r', 'unknown_command', '? (command not understood)'],
    ['41 0C 1A F8\rBUFFER FULL\r\r', 'buffer_full', 'BUFFER FULL'],
    ['41 0D 32\r\r', 'data', '41 0D 32'],
    ['410d32\r\r', 'data', '410D32'],
    ['SEARCHING...\r', 'garbled', 'garbled answer ""'],
    ['', 'garbled', 'garbled answer ""'],
    ['12.6V\r\r', 'voltage', '12.6 V'],
    ['ATRV\r14.1V\r\r', 'voltage', '14.1 V'],
    ['12V\r\r', 'voltage', '12 V'],
    ['12.6\r\r', 'garbled', 'garbled answer "12.6"'],
    ['1.2.6V\r\r', 'garbled', 'garbled answer "1.2.6V"'],
    ['41 0D 32\rOK\r\r', 'garbled', 'garbled answer "41 0D 32 | OK"'],
  ];
  for (const [text, status, described] of cases) {
    it(`${JSON.stringify(text)} is ${status}`, () => {
      const a = classify(text, text.startsWith('AT') ? text.split('\r')[0] : '010D');
      assert.equal(a.status, status);
      assert.equal(describeAnswer(a), described);
    });
  }

  it('marks answers that came after a protocol search, whatever they are', () => {
    const data = classify('SEARCHING...\r41 00 BE 1F A8 13\r\r', '0100');
    assert.deepEqual([data.status, data.searching], ['data', true]);
    const none = classify('SEARCHING...\rUNABLE TO CONNECT\r\r', '0100');
    assert.deepEqual([none.status, none.searching], ['unable_to_connect', true]);
    assert.equal(classify('41 0D 32', '010D').searching, false);
  });

  it('drops the echo and a successful BUS INIT line, keeps LFs and NULs out', () => {
    const a = classify('010D\r\nBUS INIT: ...OK\r\n\u000041 0D 32\r\n\r\n', '010D');
    assert.deepEqual(a.status === 'data' && a.lines, ['41 0D 32']);
  });
});

describe('mode01Data', () => {
  it('decodes every polled PID with the J1979 formulas', () => {
    assert.equal(decode('41 0D 32', '0D'), 50);
    assert.equal(decode('41 05 7B', '05'), 83);
    assert.equal(decode('41 05 01', '05'), -39);
    assert.equal(decode('41 0C 1A F8', '0C'), 1726);
    assert.equal(decode('41 04 80', '04'), (128 * 100) / 255);
    assert.equal(decode('41 04 FF', '04'), 100);
    assert.equal(decode('41 0F 3C', '0F'), 20);
    assert.equal(decode('41 46 32', '46'), 10);
    assert.equal(decode('41 2F 66', '2F'), 40);
    assert.equal(decode('41 42 37 14', '42'), 14.1);
    assert.deepEqual(POLLED_PIDS.map((p) => p.sensor).sort(), [
      'ambient_temp',
      'engine_load',
      'engine_temp',
      'fuel_level',
      'intake_temp',
      'module_voltage',
      'rpm',
      'speed',
    ]);
  });

  it('flags the all-ones and all-zeros encodings where they cannot be true, and only there', () => {
    const implausible: [string, string, number, RegExp][] = [
      ['41 0C FF FF', '0C', 16383.75, /all-ones encoding FF FF/],
      ['41 05 00', '05', -40, /all-zeros encoding 00/],
      ['41 05 FF', '05', 215, /all-ones/],
      ['41 0D FF', '0D', 255, /all-ones/],
      ['41 0F 00', '0F', -40, /all-zeros/],
      ['41 46 FF', '46', 215, /all-ones/],
      ['41 42 00 00', '42', 0, /all-zeros/],
      ['41 42 FF FF', '42', 65.535, /all-ones/],
    ];
    for (const [text, pid, value, why] of implausible) {
      const r = pidRead(text, pid);
      assert.ok(typeof r !== 'string' && r.value === value && r.implausible !== undefined, `${text}: ${JSON.stringify(r)}`);
      assert.match(r.implausible, why);
    }
    // Standing still, a stalled engine with the key on, coasting, full throttle, a full or empty tank.
    for (const [text, pid] of [
      ['41 0D 00', '0D'],
      ['41 0C 00 00', '0C'],
      ['41 04 00', '04'],
      ['41 04 FF', '04'],
      ['41 2F FF', '2F'],
      ['41 2F 00', '2F'],
    ]) {
      const r = pidRead(text!, pid!);
      assert.ok(typeof r !== 'string' && r.implausible === undefined, `${text}: ${JSON.stringify(r)}`);
    }
  });

  it('copes with spaces or none, headers, length bytes, checksums and echo', () => {
    for (const text of [
      '410D32',
      '010D\r41 0D 32',
      '7E8 03 41 0D 32',
      '7E803410D32',
      '48 6B 10 41 0D 32 C5',
      '18 DA F1 10 03 41 0D 32',
      '18DAF11003410D32',
    ]) {
      assert.equal(decode(text, '0D'), 50, text);
    }
  });

  it('takes the first complete answer when several ECUs answer', () => {
    assert.equal(decode('7E9 02 41 0D\r7E8 03 41 0D 32\r7EA 03 41 0D 33', '0D'), 50);
  });

  it('refuses another PID, short answers, negative responses and non-data', () => {
    assert.match(String(decode('41 0C 1A F8', '0D')), /no "41 0D"/);
    assert.match(String(decode('41 0C 1A', '0C')), /with 2 data byte/);
    assert.match(String(decode('7F 01 12', '0D')), /no "41 0D"/);
    assert.match(String(decode('NO DATA', '0D')), /not a data answer: no_data/);
    assert.match(String(decode('410D3', '0D')), /no "41 0D"/);
  });

  it('reads the 0120 and 0140 bitmaps as the PIDs after 20 and 40', () => {
    const r = mode01Data(classify('41 20 00 02 00 01', '0120'), '20', 4);
    assert.ok(r.ok);
    assert.deepEqual([...supportedPids(r.data, 0x20)], ['2F', '40']);
    const s = mode01Data(classify('41 40 44 00 00 00', '0140'), '40', 4);
    assert.ok(s.ok);
    assert.deepEqual([...supportedPids(s.data, 0x40)], ['42', '46']);
  });

  it('reads the 0100 bitmap', () => {
    const r = mode01Data(classify('41 00 BE 1F A8 13', '0100'), '00', 4);
    assert.ok(r.ok);
    assert.deepEqual([...supportedPids(r.data)].sort(), [
      '01',
      '03',
      '04',
      '05',
      '06',
      '07',
      '0C',
      '0D',
      '0E',
      '0F',
      '10',
      '11',
      '13',
      '15',
      '1C',
      '1F',
      '20',
    ]);
  });
});

describe('classify and mode01Data on random input', () => {
  const pieces = [
    '41',
    '0D',
    '05',
    '0C',
    ' ',
    '\r',
    '\n',
    '\0',
    'SEARCHING...',
    'NO DATA',
    'BUS INIT: ...',
    'ERROR',
    'ELM327 v',
    '?',
    'OK',
    '7E8',
    'STOPPED',
    'CAN ERROR',
    '>',
    'F',
    '12.4V',
    '.',
    'V',
    '42',
    '2F',
  ];
  it('never throws and always gives a known status', () => {
    const rnd = new Random(327);
    const known = new Set([
      'ok',
      'banner',
      'voltage',
      'data',
      'no_data',
      'unable_to_connect',
      'bus_error',
      'can_error',
      'stopped',
      'unknown_command',
      'buffer_full',
      'garbled',
    ]);
    for (let i = 0; i < 20_000; i++) {
      let text = '';
      const n = rnd.int(0, 12);
      for (let j = 0; j < n; j++) {
        text += rnd.next() < 0.7 ? pieces[rnd.int(0, pieces.length - 1)] : String.fromCharCode(rnd.int(0, 255));
      }
      const a = classify(text, rnd.next() < 0.5 ? '010D' : '');
      assert.ok(known.has(a.status), `${JSON.stringify(text)} -> ${a.status}`);
      assert.equal(typeof describeAnswer(a), 'string');
      for (const p of POLLED_PIDS) {
        const r = mode01Data(a, p.pid, p.bytes);
        if (r.ok) assert.ok(Number.isFinite(readPid(p, r.data).value));
      }
    }
  });

  it('keeps the queue in step through random chunks: every command gets exactly one answer', async () => {
    const rnd = new Random(38400);
    const written: string[] = [];
    const link = new Elm327((d) => written.push(d));
    const answers: Promise<Elm327Answer>[] = [];
    for (let i = 0; i < 2000; i++) {
      if (rnd.next() < 0.3) answers.push(link.send(rnd.next() < 0.5 ? '010D' : 'ATZ', 1000));
      let chunk = '';
      for (let j = rnd.int(0, 6); j > 0; j--) chunk += pieces[rnd.int(0, pieces.length - 1)];
      link.receive(rnd.next() < 0.5 ? chunk : Buffer.from(chunk, 'latin1'));
    }
    link.close();
    const settled = await Promise.all(answers);
    assert.equal(settled.length, answers.length);
    assert.ok(written.length <= answers.length);
  });
});

/** The port side of an Elm327: records what is written, answers when told. */
class FakePort {
  readonly written: string[] = [];
  readonly link = new Elm327((d) => this.written.push(d));
}

const tick = () => new Promise((r) => setImmediate(r));

describe('Elm327 command queue', () => {
  it('has exactly one command on the wire and reads its answer up to the prompt', async () => {
    const port = new FakePort();
    const answers = ['010D', '0105', '010C'].map((c) => port.link.send(c, 1000));
    await tick();
    assert.deepEqual(port.written, ['010D\r']);
    port.link.receive('41 0D');
    port.link.receive(Buffer.from(' 32\r\r'));
    await tick();
    assert.deepEqual(port.written, ['010D\r'], 'no prompt yet, nothing else sent');
    port.link.receive('>');
    await tick();
    assert.deepEqual(port.written, ['010D\r', '0105\r']);
    port.link.receive('41 05 7B\r\r>41 0C 1A F8\r\r>');
    await tick();
    assert.deepEqual(port.written, ['010D\r', '0105\r', '010C\r'], 'input after a prompt is not the next answer');
    port.link.receive('41 0C 1A F8\r\r>');
    const [speed, coolant, rpm] = await Promise.all(answers);
    assert.equal(describeAnswer(speed!), '41 0D 32');
    assert.equal(describeAnswer(coolant!), '41 05 7B');
    assert.equal(describeAnswer(rpm!), '41 0C 1A F8');
    assert.equal(port.link.unsolicited, '41 0C 1A F8\r\r>'.length);
  });

  it('times a command out, moves on, and a late answer cannot pass for the next PID', async () => {
    const port = new FakePort();
    const speed = port.link.send('010D', 30);
    const coolant = port.link.send('0105', 1000);
    assert.equal((await speed).status, 'timeout');
    assert.deepEqual(port.written, ['010D\r', '0105\r']);
    port.link.receive('41 0D 32\r\r>');
    const late = await coolant;
    assert.equal(mode01Data(late, '05', 1).ok, false);
  });

  it('drops input with no command in flight', () => {
    const port = new FakePort();
    port.link.receive('STOPPED\r\r>');
    assert.equal(port.link.unsolicited, 'STOPPED\r\r>'.length);
  });

  it('gives up on an answer that never ends in a prompt', async () => {
    const port = new FakePort();
    const a = port.link.send('010D', 1000);
    port.link.receive('4'.repeat(5000));
    assert.deepEqual(pick(await a), ['garbled', 'over 4096 characters without a prompt']);
  });

  it('resolves everything in flight or queued as closed when the port goes, and later sends too', async () => {
    const port = new FakePort();
    const pending = [port.link.send('ATZ', 1000), port.link.send('ATE0', 1000)];
    port.link.close();
    assert.deepEqual(
      (await Promise.all(pending)).map((a) => a.status),
      ['closed', 'closed'],
    );
    assert.equal((await port.link.send('010D', 1000)).status, 'closed');
    assert.deepEqual(port.written, ['ATZ\r']);
  });
});

function pick(a: Elm327Answer): [string, string] {
  return [a.status, a.status === 'garbled' ? a.text : ''];
}
