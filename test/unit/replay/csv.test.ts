import assert from 'node:assert/strict';
import { afterAll, describe, it } from 'vitest';
import { parseTimestamp, readCsv, type CsvOptions, type CsvRow } from '../../../cloud/replay/csv.js';
import { BASE, tempFiles } from './files.js';

const files = tempFiles();
afterAll(() => files.cleanup());

async function read(content: string, opts?: CsvOptions): Promise<CsvRow[]> {
  const rows: CsvRow[] = [];
  for await (const row of readCsv(files.write('in.csv', content), opts)) rows.push(row);
  return rows;
}

async function failure(content: string, opts?: CsvOptions): Promise<string> {
  const file = files.write('in.csv', content);
  try {
    for await (const _ of readCsv(file, opts));
  } catch (err) {
    assert.equal((err as Error).name, 'ReplayInputError');
    return (err as Error).message.replace(file, 'in.csv');
  }
  assert.fail('no error');
}

describe('readCsv', () => {
  it('turns a two-column row into a good, synced reading of the default vehicle and sensor', async () => {
    assert.deepEqual(await read(`${BASE},90.5\n`), [
      {
        line: 1,
        reading: { vehicle: 'replay', seq: 1, ts: BASE, clock: 'synced', sensor: 'engine_temp', value: 90.5, quality: 'good' },
      },
    ]);
  });

  it('skips a BOM, header, blank lines and comments, and reports real line numbers', async () => {
    const rows = await read(`\uFEFFtimestamp,value\r\n\r\n# a comment\r\n${BASE},90\r\n  \r\n"${BASE + 1000}", "91"\r\n`);
    assert.deepEqual(
      rows.map((r) => [r.line, r.reading.seq, r.reading.value]),
      [
        [4, 1, 90],
        [6, 2, 91],
      ],
    );
  });

  it('reads every line of a file of many reads, whatever its line ends, where a read splits a line or a \\r\\n', async () => {
    const ends = ['\r\n', '\n', '\r'];
    const values = Array.from({ length: 20_000 }, (_, i) => i);
    // The last line has no end: it is a row all the same.
    const content = `timestamp,value\n${values.map((v, i) => `${BASE + i * 1000},${v % 200}${i === values.length - 1 ? '' : ends[i % 3]}`).join('')}`;
    const rows = await read(content);
    assert.deepEqual(
      rows.map((r) => [r.line, r.reading.value]),
      values.map((v, i) => [i + 2, v % 200]),
    );
  });

  it('numbers rows per vehicle and filters four-column files by the options', async () => {
    const csv = [
      `${BASE},truck-1,engine_temp,90`,
      `${BASE},truck-2,engine_temp,91`,
      `${BASE},truck-1,rpm,1500`,
      `${BASE + 1000},truck-1,engine_temp,92`,
    ].join('\n');
    assert.deepEqual(
      (await read(csv)).map((r) => `${r.reading.vehicle}#${r.reading.seq}`),
      ['truck-1#1', 'truck-2#1', 'truck-1#2', 'truck-1#3'],
    );
    assert.deepEqual(
      (await read(csv, { vehicle: 'truck-1', sensor: 'engine_temp' })).map((r) => [r.line, r.reading.seq]),
      [
        [1, 1],
        [4, 3],
      ],
    );
  });

  it('names file, line and problem of every kind of bad row', async () => {
    const cases: Array<[string, string | RegExp]> = [
      [`${BASE},90\n${BASE},9x`, 'in.csv:2: value "9x" is not a number'],
      [`${BASE},90\nyesterday,90`, 'in.csv:2: timestamp "yesterday" is neither ms since epoch nor ISO-8601'],
      ['2024-02-30T00:00:00Z,90', 'in.csv:1: timestamp "2024-02-30T00:00:00Z" is neither ms since epoch nor ISO-8601'],
      [`${BASE},90\n${BASE},90,1`, 'in.csv:2: expected 2 columns like the rows above, got 3'],
      ['a,b,c', 'in.csv:1: expected 2 columns (timestamp,value) or 4 (timestamp,vehicle,sensor,value), got 3'],
      [
        `${BASE},truck-1,fuel,3`,
        /^in\.csv:1: sensor "fuel" is not one of engine_temp, container_temp, speed, rpm, engine_load, .*, generic$/,
      ],
      [`${BASE},truck-1,gps,50`, 'in.csv:1: gps rows are not supported in CSV (a gps reading needs a position)'],
      [`${BASE},truck 1,rpm,50`, 'in.csv:1: reading.vehicle: must be 1-64 characters of A-Z a-z 0-9 _ -, got "truck 1"'],
      [`${BASE},400`, 'in.csv:1: reading.value: engine_temp must be a number in [-60, 250], got 400'],
    ];
    for (const [csv, message] of cases) {
      if (typeof message === 'string') assert.equal(await failure(csv), message);
      else assert.match(await failure(csv), message);
    }
    // Seconds or µs instead of ms: caught by the plausible-time check, not silently shifted.
    assert.match(await failure(`${BASE / 1000},90`), /^in\.csv:1: reading\.ts: must be ms since epoch/);
    assert.match(await failure(`${BASE * 1000},90`), /^in\.csv:1: reading\.ts: must be ms since epoch/);
  });

  it('refuses gps as the sensor of a two-column file before reading it', async () => {
    assert.equal(
      await failure(`${BASE},50`, { sensor: 'gps' }),
      'in.csv: gps rows are not supported in CSV (a gps reading needs a position)',
    );
  });

  it('names a file it cannot open or read', async () => {
    const missing = files.write('x.csv', '') + '.missing';
    await assert.rejects(readCsv(missing).next(), { name: 'ReplayInputError', message: new RegExp(`^${missing}: cannot open: ENOENT`) });
    const dir = missing.slice(0, missing.lastIndexOf('/'));
    await assert.rejects(readCsv(dir).next(), {
      name: 'ReplayInputError',
      message: `${dir}: cannot read: EISDIR: illegal operation on a directory, read`,
    });
  });
});

describe('parseTimestamp', () => {
  it('reads ms since epoch and the usual ISO-8601 forms, taking a missing offset as UTC', () => {
    const noon = Date.UTC(2024, 2, 1, 12, 0, 0);
    assert.equal(parseTimestamp(String(noon)), noon);
    for (const s of [
      '2024-03-01T12:00:00Z',
      '2024-03-01T12:00:00.000Z',
      '2024-03-01 12:00:00',
      '2024-03-01T12:00',
      '2024-03-01t12:00:00z',
    ]) {
      assert.equal(parseTimestamp(s), noon, s);
    }
    assert.equal(parseTimestamp('2024-03-01T13:00:00+01:00'), noon);
    assert.equal(parseTimestamp('2024-03-01T13:00:00+0100'), noon);
    assert.equal(parseTimestamp('2024-03-01T12:00:00.123456Z'), noon + 123);
    assert.equal(parseTimestamp('2024-03-01'), Date.UTC(2024, 2, 1));
  });

  it('rejects what is not a timestamp', () => {
    for (const s of ['', 'now', '1.5e12', '-5', '2024-13-01', '2024-02-30', '2024-03-01T25:00:00Z', 'March 1, 2024']) {
      assert.equal(parseTimestamp(s), undefined, s);
    }
  });
});
