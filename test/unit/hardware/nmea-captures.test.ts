import { join } from 'node:path';
import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { FixCycle, type Fix } from '../../../hardware/gps/fix-cycle.js';
import { checksum, hex2, parseLine, parseNmea, type NmeaSentence } from '../../../hardware/gps/nmea.js';
import { SHARED_DATA } from '../../support/paths.js';

/** From dist/test/unit/hardware/ up to the repository's parent, where the shared data lives. */
const CAPTURES = join(SHARED_DATA, 'nmea');

const nmea = (body: string) => `$${body}*${hex2(checksum(body))}`;

function sentence(line: string): NmeaSentence {
  const r = parseNmea(line);
  assert.ok(r.ok, line);
  return r.sentence;
}

/** The stream as the sensor reads it: lines to sentences, sentences to one fix per cycle. */
function readStream(text: string): { fixes: Fix[]; refused: string[] } {
  const cycle = new FixCycle();
  const fixes: Fix[] = [];
  const refused: string[] = [];
  for (const line of text.split('\n')) {
    const r = parseLine(line);
    if (r === undefined) continue;
    if (!r.ok) {
      if (r.reason !== 'unknown') refused.push(r.reason);
      continue;
    }
    const done = cycle.push(r.sentence);
    if (done) fixes.push(done);
  }
  const last = cycle.flush();
  if (last) fixes.push(last);
  return { fixes, refused };
}

describe('FixCycle', () => {
  const T = Date.UTC(2014, 11, 31);
  const cycle = (tod: string, speed = '0.69') =>
    [
      `$GPGGA,${tod},3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000`,
      '$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5',
      `$GPRMC,${tod},A,3747.0873,S,17518.8938,E,${speed},181.39,311214,,,A`,
    ].map((l) => sentence(nmea(l.slice(1))));

  it('ends a cycle when the time changes, or on flush', () => {
    const c = new FixCycle();
    const first = cycle('030719.000').map((s) => c.push(s));
    assert.deepEqual(first, [undefined, undefined, undefined]);
    const [done] = cycle('030720.000', '1.15').map((s) => c.push(s));
    assert.equal(done!.utcMs, T + ((3 * 60 + 7) * 60 + 19) * 1000);
    assert.equal(done!.fix, '3d');
    assert.ok(Math.abs(done!.speedKmh! - 0.69 * 1.852) < 1e-9);
    assert.equal(done!.courseDeg, 181.39);
    assert.ok(Math.abs(done!.lat! - -37.784788333) < 1e-8);
    assert.ok(Math.abs(c.flush()!.speedKmh! - 1.15 * 1.852) < 1e-9);
    assert.equal(c.flush(), undefined);
  });

  it('gives sentences without a time to the cycle they arrive in, even first', () => {
    const c = new FixCycle();
    c.push(sentence(nmea('GNGSA,A,2,,,,,,,,,,,,,2.0,1.0,1.7')));
    c.push(sentence(nmea('GNRMC,120000.00,A,5000.00000,N,00800.00000,E,10.000,,010125,,,A')));
    c.push(sentence(nmea('GNVTG,45.00,T,,M,10.000,N,18.520,K,A')));
    const f = c.flush()!;
    assert.equal(f.fix, '2d');
    assert.equal(f.courseDeg, 45, 'RMC left the course empty; VTG has it');
  });

  it('drops a straggler of a cycle already flushed, rather than report it twice', () => {
    const c = new FixCycle();
    const [gga, gsa, rmc] = cycle('030719.000');
    c.push(gga!);
    c.push(gsa!);
    assert.ok(c.flush());
    assert.equal(c.push(rmc!), undefined);
    assert.equal(c.flush(), undefined);
  });

  it('dates a cycle whose RMC was lost from the last RMC, across midnight', () => {
    const c = new FixCycle();
    c.push(sentence(nmea('GPRMC,235959.00,A,5000.0,N,00800.0,E,0.0,,311224,,,A')));
    const f = c.push(sentence(nmea('GPGGA,000000.00,5000.0,N,00800.0,E,1,08,0.9,100.0,M,47.0,M,,')))!;
    assert.equal(f.utcMs, Date.parse('2024-12-31T23:59:59Z'));
    const next = c.flush()!;
    assert.equal(next.utcMs, Date.parse('2025-01-01T00:00:00Z'));
    assert.equal(next.fix, '3d', 'GGA with an altitude and no GSA');
    assert.equal(next.speedKmh, undefined);
  });

  it('reads receivers without RMC: GNS or GLL for the position, ZDA for the date, VTG for the speed', () => {
    const gnsOnly = new FixCycle();
    gnsOnly.push(sentence(nmea('GNGNS,120000.00,5000.00000,N,00800.00000,E,AAN,09,0.90,250.0,47.0,,,V')));
    assert.deepEqual(gnsOnly.flush(), { fix: '3d', timeMs: 43_200_000, lat: 50, lon: 8 }, 'no date, no speed: only what it said');
    const timing = new FixCycle();
    for (const b of [
      'GPGGA,120000.00,5000.00000,N,00800.00000,E,1,09,0.90,250.0,M,47.0,M,,',
      'GPZDA,120000.00,01,06,2025,00,00',
      'GPVTG,90.00,T,,M,10.000,N,18.520,K,A',
    ]) {
      timing.push(sentence(nmea(b)));
    }
    assert.deepEqual(timing.flush(), {
      fix: '3d',
      timeMs: 43_200_000,
      utcMs: Date.parse('2025-06-01T12:00:00Z'),
      lat: 50,
      lon: 8,
      speedKmh: 18.52,
      courseDeg: 90,
    });
    const gll = new FixCycle();
    gll.push(sentence(nmea('GPGLL,5000.00000,N,00800.00000,E,120000.00,A,A')));
    assert.deepEqual(gll.flush(), { fix: '2d', timeMs: 43_200_000, lat: 50, lon: 8 });
  });

  it('gives no position, speed or course without a fix: zero-filled no-fix sentences are not at 0°, 0°', () => {
    const c = new FixCycle();
    c.push(sentence(nmea('GPGGA,000012.000,0000.0000,N,00000.0000,E,0,0,,0.0,M,0.0,M,,')));
    c.push(sentence(nmea('GPRMC,000012.000,V,0000.0000,N,00000.0000,E,0.00,0.00,280606,,,N')));
    assert.deepEqual(c.flush(), { fix: 'none', timeMs: 12_000, utcMs: Date.UTC(2006, 5, 28) + 12_000 });
  });

  it('trusts a time only with a fix, and carries only the date of a cycle with a fix', () => {
    const c = new FixCycle();
    // A receiver restarted with its firmware's date, no fix yet.
    c.push(sentence(nmea('GPRMC,101500.000,V,0000.0000,N,00000.0000,E,0.00,0.00,280606,,,N')));
    assert.equal(c.validTime(), undefined);
    c.flush();
    c.push(sentence(nmea('GPGGA,101501.000,5000.0,N,00800.0,E,1,08,0.9,100.0,M,47.0,M,,')));
    assert.equal(c.validTime(), undefined, 'no date of a fix to go with it');
    assert.equal(c.flush()!.utcMs, undefined);
    const rmc = sentence(nmea('GPRMC,101502.000,A,5000.0,N,00800.0,E,0.0,,010625,,,A'));
    c.push(rmc);
    assert.equal(c.validTime(), Date.parse('2025-06-01T10:15:02Z'), 'known as the burst arrives');
    c.push(sentence(nmea('GPGGA,101503.000,5000.0,N,00800.0,E,1,08,0.9,100.0,M,47.0,M,,')));
    assert.equal(c.validTime(), Date.parse('2025-06-01T10:15:03Z'), 'the date of the last fix carried');
    c.push(sentence(nmea('GPGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99')));
    assert.equal(c.validTime(), undefined, 'a sentence of the cycle says no fix');
  });

  it('a burst with blank time fields is a cycle of its own: it never takes the place of the fix before it', () => {
    const c = new FixCycle();
    for (const s of cycle('030719.000')) c.push(s);
    // Lost the fix 200 ms later, before the quiet gap ended the cycle.
    const done = c.push(sentence(nmea('GPGGA,,,,,,0,,,,,,,,')));
    assert.equal(done!.utcMs, T + ((3 * 60 + 7) * 60 + 19) * 1000);
    assert.ok(Math.abs(done!.lat! - -37.784788333) < 1e-8);
    for (const b of [
      'GNGNS,,,,,,NN,,,,,,',
      'GNGNS,,,,,,NN,,,,,,',
      'GPRMC,,V,,,,,,,,,,N',
      'GPVTG,,T,,M,,N,,K,N',
      'GPGSA,A,1,,,,,,,,,,,,,,,',
    ]) {
      assert.equal(c.push(sentence(nmea(b))), undefined);
    }
    // The next blank burst, before any quiet gap: it starts with the same sentence.
    assert.deepEqual(c.push(sentence(nmea('GPGGA,,,,,,0,,,,,,,,'))), { fix: 'none' });
    assert.deepEqual(c.flush(), { fix: 'none' });
  });

  it('an empty VTG or GSA never takes the place of a full one in the same cycle', () => {
    const c = new FixCycle();
    c.push(sentence(nmea('GNRMC,120000.00,A,5000.00000,N,00800.00000,E,,,010125,,,A')));
    c.push(sentence(nmea('GNVTG,45.00,T,,M,10.000,N,18.520,K,A')));
    c.push(sentence(nmea('GNGSA,A,3,02,05,07,09,13,15,20,30,,,,,1.60,0.90,1.30')));
    c.push(sentence(nmea('GNVTG,,T,,M,,N,,K,N')));
    c.push(sentence(nmea('GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99')));
    const f = c.flush()!;
    assert.deepEqual([f.fix, f.speedKmh, f.courseDeg], ['3d', 18.52, 45]);
  });

  it('says no fix if any sentence of the cycle says so', () => {
    const noFix = [
      ['GPRMC,120000.00,V,5000.0,N,00800.0,E,0.0,,010125,,,N', 'GPGSA,A,3,,,,,,,,,,,,,1,1,1'],
      ['GPGGA,120000.00,5000.0,N,00800.0,E,0,00,,,,,,,', 'GPGSA,A,3,,,,,,,,,,,,,1,1,1'],
      ['GPRMC,120000.00,A,5000.0,N,00800.0,E,0.0,,010125,,,A', 'GPGSA,A,1,,,,,,,,,,,,,1,1,1'],
      ['GNGNS,120000.00,5000.0,N,00800.0,E,NNN,00,,,,,,V'],
      ['GPGLL,5000.0,N,00800.0,E,120000.00,V,N', 'GPGSA,A,3,,,,,,,,,,,,,1,1,1'],
    ];
    for (const bodies of noFix) {
      const c = new FixCycle();
      for (const b of bodies) c.push(sentence(nmea(b)));
      const f = c.flush()!;
      assert.equal(f.fix, 'none', bodies.join(' '));
      assert.equal(f.lat, undefined, 'and no position');
    }
    const rmcOnly = new FixCycle();
    rmcOnly.push(sentence(nmea('GPRMC,120000.00,A,5000.0,N,00800.0,E,0.0,,010125,,,A')));
    assert.equal(rmcOnly.flush()!.fix, '2d');
    // After a 3D fix, a cycle that lost its GGA and GSA keeps the dimension.
    for (const s of cycle('030719.000')) rmcOnly.push(s);
    rmcOnly.push(sentence(nmea('GPRMC,030720.000,A,3747.0875,S,17518.8938,E,1.15,181.39,311214,,,A')));
    assert.equal(rmcOnly.flush()!.fix, '3d');
  });
});

describe('real receiver captures against gpsd', () => {
  interface Tpv {
    mode: number;
    time: string;
    lat: number;
    lon: number;
    speed?: number;
    track?: number;
  }

  for (const capture of ['bu353s4.log', 'ublox-lea-5h.log', 'quectel-L70.log']) {
    it(`${capture}: the same fixes as gpsd`, () => {
      const log = readFileSync(join(CAPTURES, capture), 'latin1');
      // `#` lines are the capture's header (one of them names sentences after a `$`).
      const { fixes, refused } = readStream(
        log
          .split('\n')
          .filter((l) => !l.startsWith('#'))
          .join('\n'),
      );
      assert.deepEqual(refused, [], 'a real receiver sends nothing we should refuse');

      // gpsd reports a TPV as each sentence comes in; the last one for a time is the whole fix.
      const expected = new Map<number, Tpv>();
      for (const line of readFileSync(join(CAPTURES, `${capture}.chk`), 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as Partial<Tpv> & { class: string };
        if (rec.class === 'TPV' && rec.time !== undefined && rec.lat !== undefined) expected.set(Date.parse(rec.time), rec as Tpv);
      }
      assert.ok(expected.size >= 15, `${expected.size} gpsd fixes`);

      const ours = new Map(fixes.filter((f) => f.utcMs !== undefined).map((f) => [f.utcMs!, f]));
      for (const [utc, tpv] of expected) {
        const at = new Date(utc).toISOString();
        const f = ours.get(utc);
        assert.ok(f, `no fix for ${at}`);
        assert.equal(f.fix, tpv.mode === 3 ? '3d' : '2d', at);
        assert.ok(Math.abs(f.lat! - tpv.lat) < 1e-7, `${at} lat ${f.lat} vs ${tpv.lat}`);
        assert.ok(Math.abs(f.lon! - tpv.lon) < 1e-7, `${at} lon ${f.lon} vs ${tpv.lon}`);
        // gpsd prints m/s to 3 decimals.
        if (f.speedKmh !== undefined && tpv.speed !== undefined) {
          assert.ok(Math.abs(f.speedKmh / 3.6 - tpv.speed) <= 0.0006, `${at} speed ${f.speedKmh / 3.6} vs ${tpv.speed}`);
        }
        if (tpv.track !== undefined) assert.ok(Math.abs(f.courseDeg! - tpv.track) < 1e-6, `${at} course`);
      }
      // Fixes gpsd did not report are only cycles cut short by the capture, still with a position.
      const extra = [...ours.keys()].filter((t) => !expected.has(t));
      assert.ok(extra.length <= 1, `fixes gpsd did not report: ${extra.map((t) => new Date(t).toISOString())}`);
      for (const t of extra) assert.notEqual(ours.get(t)!.lat, undefined);
    });
  }
});

describe('a recorded stream with boot noise', () => {
  it('yields the fixes its sentences hold and refuses only the broken ones', () => {
    const noFix = [
      nmea('GNGGA,000001.00,,,,,0,00,99.99,,,,,,'),
      nmea('GNRMC,000001.00,V,,,,,,,060180,,,N'),
      nmea('GNVTG,,T,,M,,N,,K,N'),
      nmea('GNGSA,A,1,,,,,,,,,,,,,99.99,99.99,99.99'),
    ];
    const fix = (tod: string, lat: string, knots: string) => [
      nmea(`GNGGA,${tod},${lat},N,00800.00000,E,1,09,0.90,250.0,M,47.0,M,,`),
      nmea(`GNRMC,${tod},A,${lat},N,00800.00000,E,${knots},90.00,010625,,,A`),
      nmea(`GNVTG,90.00,T,,M,${knots},N,${(Number(knots) * 1.852).toFixed(3)},K,A`),
      nmea('GNGSA,A,3,02,05,07,09,13,15,20,30,,,,,1.60,0.90,1.30'),
    ];
    const [gga2, rmc2, ...rest2] = fix('080002.00', '5000.60000', '10.000');
    const text = [
      '0.00,N,0.00,K,N*32', // the tail of a sentence the port opened into
      'GPS emulator v1.0 boot',
      '$PMTK011,MTKGPS*08',
      '',
      ...noFix,
      ...fix('080001.00', '5000.00000', '0.000'),
      `\x93\xfe\x00noise${gga2}`, // line noise glued to the front of a sentence
      rmc2!.replace(/\*..$/, '*00'),
      ...rest2,
      '$GNGGA,080003.00,5001.2', // cut off by a power loss
      ...fix('080003.00', '5001.20000', '20.000'),
    ].join('\r\n');

    const { fixes, refused } = readStream(text);
    assert.deepEqual(refused, ['checksum', 'checksum']);
    assert.deepEqual(
      fixes.map((f) => [
        f.utcMs === undefined ? undefined : new Date(f.utcMs).toISOString(),
        f.fix,
        f.lat?.toFixed(2),
        f.speedKmh?.toFixed(2),
      ]),
      [
        ['1980-01-06T00:00:01.000Z', 'none', undefined, undefined],
        ['2025-06-01T08:00:01.000Z', '3d', '50.00', '0.00'],
        // Its RMC refused: the date carries over from the last RMC, the speed comes from VTG.
        ['2025-06-01T08:00:02.000Z', '3d', '50.01', '18.52'],
        ['2025-06-01T08:00:03.000Z', '3d', '50.02', '37.04'],
      ],
    );
  });
});
