import { describe, it } from 'vitest';
import assert from 'node:assert/strict';
import { checksum, hex2, parseLine, parseNmea, type NmeaSentence, type ParseResult, type Refusal } from '../../../hardware/gps/nmea.js';
import { Random } from '../../../simulators/random.js';

/** A sentence with its checksum computed, from the body between `$` and `*`. */
const nmea = (body: string) => `$${body}*${hex2(checksum(body))}`;

function ok(line: string): NmeaSentence {
  const r = parseNmea(line);
  assert.ok(r.ok, `${line} refused: ${r.ok ? '' : `${r.reason}: ${r.detail}`}`);
  return r.sentence;
}

function refused(line: string, reason: Refusal, detail?: RegExp): void {
  const r = parseNmea(line);
  assert.equal(r.ok, false, `${line} accepted`);
  assert.equal(r.ok ? undefined : r.reason, reason, `${line}: ${r.ok ? '' : r.detail}`);
  if (detail) assert.match(r.ok ? '' : r.detail, detail);
}

const TALKERS = ['GP', 'GN', 'GL', 'GA', 'BD', 'GB', 'GQ', 'GI'];
const BODIES = {
  GGA: 'GGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000',
  RMC: 'RMC,150119.000,A,5104.0859,N,11405.7387,W,0.09,194.17,090322,,,D',
  GNS: 'GNS,014035.00,4332.69262,S,17235.48549,E,RR,13,0.9,25.63,11.24,,',
  GLL: 'GLL,5155.55442,N,00434.65873,E,083723.00,A,A',
  VTG: 'VTG,054.7,T,034.4,M,005.5,N,010.2,K,A',
  GSA: 'GSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5',
  ZDA: 'ZDA,150119.000,09,03,2022,,',
};

describe('parseNmea: the sentences a position, speed and date come in', () => {
  it('reads GGA, RMC, GNS, GLL, VTG, GSA and ZDA from every talker', () => {
    for (const talker of TALKERS) {
      for (const [type, body] of Object.entries(BODIES)) {
        const s = ok(nmea(talker + body));
        assert.equal(s.type, type);
        assert.equal(s.talker, talker);
      }
    }
  });

  it('GGA: time of day, signed position, quality, altitude', () => {
    const s = ok('$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7D');
    assert.equal(s.type, 'GGA');
    if (s.type !== 'GGA') return;
    assert.equal(s.timeMs, ((3 * 60 + 7) * 60 + 19) * 1000);
    assert.ok(Math.abs(s.lat! - -37.784788333) < 1e-8);
    assert.ok(Math.abs(s.lon! - 175.314896667) < 1e-8);
    assert.equal(s.quality, 1);
    assert.equal(s.altitudeM, 59.9);
    const noFix = ok(nmea('GNGGA,235959.50,,,,,0,00,99.99,,,,,,'));
    assert.deepEqual(noFix, { type: 'GGA', talker: 'GN', quality: 0, timeMs: 86_399_500 });
  });

  it('RMC: validity, knots to km/h, course, date', () => {
    const s = ok('$GPRMC,150119.000,A,5104.0859,N,11405.7387,W,0.09,194.17,090322,,,D*73');
    assert.equal(s.type, 'RMC');
    if (s.type !== 'RMC') return;
    assert.equal(s.valid, true);
    assert.ok(Math.abs(s.lat! - 51.068098333) < 1e-8);
    assert.ok(Math.abs(s.lon! - -114.095645) < 1e-8);
    assert.ok(Math.abs(s.speedKmh! - 0.09 * 1.852) < 1e-9);
    assert.equal(s.courseDeg, 194.17);
    assert.equal(s.dateMs, Date.UTC(2022, 2, 9));
    assert.equal(s.dateMs + s.timeMs!, Date.parse('2022-03-09T15:01:19Z'));
    const v = ok(nmea('GNRMC,000012.00,V,,,,,,,060180,,,N'));
    assert.deepEqual(v, { type: 'RMC', talker: 'GN', valid: false, timeMs: 12_000, dateMs: Date.UTC(1980, 0, 6) });
    // NMEA 2.3 mode N: not valid, whatever the status says.
    assert.equal((ok(nmea('GPRMC,120000,A,5000.0,N,00800.0,E,1.0,,010125,,,N')) as { valid: boolean }).valid, false);
    assert.equal((ok(nmea('GPRMC,120000,A,5000.0,N,00800.0,E,1.0,360.0,010125,,')) as { courseDeg: number }).courseDeg, 0);
  });

  it('GNS: a mode letter per constellation, valid when any has a fix; altitude', () => {
    const s = ok(nmea(`GN${BODIES.GNS}`));
    assert.equal(s.type, 'GNS');
    if (s.type !== 'GNS') return;
    assert.equal(s.valid, true);
    assert.equal(s.timeMs, ((1 * 60 + 40) * 60 + 35) * 1000);
    assert.ok(Math.abs(s.lat! - -(43 + 32.69262 / 60)) < 1e-9);
    assert.ok(Math.abs(s.lon! - (172 + 35.48549 / 60)) < 1e-9);
    assert.equal(s.altitudeM, 25.63);
    assert.equal(
      (ok(nmea('GNGNS,122310.2,3722.425671,N,12258.856215,W,NAN,14,0.9,1005.543,6.5,,,V')) as { valid: boolean }).valid,
      true,
      'GLONASS has one',
    );
    // u-blox fills the NMEA 4.1 navigational status with V ("not given"): not a verdict on the fix.
    assert.equal((ok(nmea('GNGNS,122310.2,3722.425671,N,12258.856215,W,AA,14,0.9,1005.543,6.5,,,V')) as { valid: boolean }).valid, true);
    assert.deepEqual(ok(nmea('GNGNS,,,,,,NN,,,,,,')), { type: 'GNS', talker: 'GN', valid: false });
  });

  it('GLL: position, time and status', () => {
    assert.deepEqual(ok(nmea(`GP${BODIES.GLL}`)), {
      type: 'GLL',
      talker: 'GP',
      valid: true,
      lat: 51 + 55.55442 / 60,
      lon: 4 + 34.65873 / 60,
      timeMs: ((8 * 60 + 37) * 60 + 23) * 1000,
    });
    assert.equal((ok(nmea('GPGLL,5155.55442,N,00434.65873,E,083723.00,A,N')) as { valid: boolean }).valid, false, 'mode N');
    assert.deepEqual(ok(nmea('GPGLL,,,,,,V,N')), { type: 'GLL', talker: 'GP', valid: false });
  });

  it('ZDA: time and the full date', () => {
    assert.deepEqual(ok(nmea(`GP${BODIES.ZDA}`)), {
      type: 'ZDA',
      talker: 'GP',
      timeMs: ((15 * 60 + 1) * 60 + 19) * 1000,
      dateMs: Date.UTC(2022, 2, 9),
    });
    // The HP 58534A writes the local zone as +00.
    assert.equal((ok(nmea('GPZDA,222449,25,10,2010,+00,00')) as { dateMs: number }).dateMs, Date.UTC(2010, 9, 25));
    assert.deepEqual(ok(nmea('GPZDA,,,,,00,00')), { type: 'ZDA', talker: 'GP' });
  });

  it('placeholders for "not known yet" read as empty, and are named', () => {
    const mtk = parseNmea(nmea('GPRMC,000012.000,V,0000.0000,N,00000.0000,E,0.00,0.00,000000,,,N'));
    assert.deepEqual(mtk, {
      ok: true,
      sentence: { type: 'RMC', talker: 'GP', valid: false, timeMs: 12_000, lat: 0, lon: 0, speedKmh: 0, courseDeg: 0 },
      placeholder: 'GPRMC: date "000000"',
    });
    const zda = parseNmea(nmea('GPZDA,000012.000,00,00,0000,00,00'));
    assert.deepEqual(zda, { ok: true, sentence: { type: 'ZDA', talker: 'GP', timeMs: 12_000 }, placeholder: 'GPZDA: date "00,00,0000"' });
    assert.equal((parseNmea(nmea(`GP${BODIES.RMC}`)) as { placeholder?: string }).placeholder, undefined);
  });

  it('VTG: km/h as given, knots only when km/h is empty', () => {
    assert.deepEqual(ok(nmea('GPVTG,054.7,T,034.4,M,005.5,N,010.2,K,A')), { type: 'VTG', talker: 'GP', courseDeg: 54.7, speedKmh: 10.2 });
    const knotsOnly = ok(nmea('GPVTG,,T,,M,10.0,N,,K,A')) as { speedKmh: number };
    assert.ok(Math.abs(knotsOnly.speedKmh - 18.52) < 1e-9);
    assert.deepEqual(ok(nmea('GNVTG,,T,,M,,N,,K,N')), { type: 'VTG', talker: 'GN' });
  });

  it('GSA: fix mode 1, 2, 3 to none, 2d, 3d', () => {
    for (const [mode, fix] of [
      ['1', 'none'],
      ['2', '2d'],
      ['3', '3d'],
    ]) {
      assert.deepEqual(ok(nmea(`GNGSA,A,${mode},,,,,,,,,,,,,99.99,99.99,99.99`)), { type: 'GSA', talker: 'GN', fix });
    }
  });

  it('takes lowercase checksum digits and a leap second', () => {
    const line = nmea('GPGGA,235960,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,');
    assert.equal((ok(line.slice(0, -2) + line.slice(-2).toLowerCase()) as { timeMs: number }).timeMs, 86_400_000);
  });
});

describe('parseNmea: refusals', () => {
  it('checksum: missing, not hex, or wrong', () => {
    refused('$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000', 'checksum', /no \*hh/);
    refused('$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7', 'checksum', /two hex/);
    refused('$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*ZZ', 'checksum', /two hex/);
    refused('$GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,0000*7E', 'checksum', /7E does not match 7D/);
    // One flipped digit in a field: what a noisy line does.
    refused('$GPGGA,030719.000,3747.0873,S,17518.8939,E,1,08,1.1,59.9,M,23.7,M,,0000*7D', 'checksum');
  });

  it('unknown: sentences this reader does not use, proprietary ones of any length, odd addresses', () => {
    refused('$GPGSV,3,1,12,17,72,207,32,28,59,095,31,06,35,347,25,01,29,132,23*7B', 'unknown', /GPGSV/);
    refused('$GPTXT,01,01,02,u-blox ag - www.u-blox.com*50', 'unknown');
    refused(nmea(`GPTXT,${'x'.repeat(200)}`), 'unknown');
    refused('$PMTK011,MTKGPS*08', 'unknown');
    refused('$PQVERNO,R,L70BGR03A05S,2019/10/09,21:12*23', 'unknown');
    refused(nmea('PUBX,00,081350.00,4717.113210,N,00833.915187,E,546.589,G3,2.1,2.0,0.007,77.52,0.007,,0.92,1.19,0.77,9,0,0'), 'unknown');
    refused(
      nmea(`PGLOR,1,SAT,${Array.from({ length: 14 }, (_, i) => `G${String(i + 1).padStart(2, '0')},035,11`).join(',')}`),
      'unknown',
      /PGLOR/,
    );
    refused(nmea('gpgga,030719.000'), 'unknown');
    refused(nmea('GPGGAX,1'), 'unknown');
    refused(nmea(''), 'unknown');
  });

  it('malformed: not a sentence, a sentence we read too long, control characters', () => {
    refused('GPGGA,030719.000*00', 'malformed', /start with \$/);
    refused('', 'malformed');
    refused(nmea(`GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,${'0'.repeat(100)}`), 'malformed', /longer than/);
    refused(nmea(`PGLOR,${'x'.repeat(200)}\x01`), 'malformed', /non-printable/);
    refused(nmea('GPGGA,030719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,\x01'), 'malformed', /non-printable/);
  });

  it('malformed: every kind of bad field', () => {
    const cases: [string, RegExp][] = [
      ['GPGGA,030719.000,3747.0873,S', /fields, needs at least 9/],
      ['GPRMC,150119.000,A,5104.0859,N', /fields, needs at least 9/],
      ['GPVTG,054.7,T', /needs at least 8/],
      ['GPGSA,A,3', /needs at least 17/],
      ['GPGGA,250719.000,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /time "250719.000"/],
      ['GPGGA,0307,3747.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /time "0307"/],
      ['GPGGA,030719,3767.0873,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lat "3767.0873"/],
      ['GPGGA,030719,9100.0000,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lat "9100.0000"/],
      ['GPGGA,030719,3747.0873,S,18118.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lon "18118.8938"/],
      ['GPGGA,030719,3747.0873,X,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lat hemisphere "X"/],
      ['GPGGA,030719,3747.0873,,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lat hemisphere ""/],
      ['GPGGA,030719,,S,17518.8938,E,1,08,1.1,59.9,M,23.7,M,,', /lat ""/],
      ['GPGGA,030719,3747.0873,S,17518.8938,E,X,08,1.1,59.9,M,23.7,M,,', /quality "X"/],
      ['GPGGA,030719,3747.0873,S,17518.8938,E,1,08,1.1,abc,M,23.7,M,,', /altitude "abc"/],
      ['GPRMC,150119.000,X,5104.0859,N,11405.7387,W,0.09,194.17,090322,,,D', /status "X"/],
      ['GPRMC,150119.000,A,5104.0859,N,11405.7387,W,-1,194.17,090322,,,D', /speed "-1"/],
      ['GPRMC,150119.000,A,5104.0859,N,11405.7387,W,1e3,194.17,090322,,,D', /speed "1e3"/],
      ['GPRMC,150119.000,A,5104.0859,N,11405.7387,W,0.09,361,090322,,,D', /course "361"/],
      ['GPRMC,150119.000,A,5104.0859,N,11405.7387,W,0.09,194.17,310222,,,D', /date "310222"/],
      ['GPRMC,150119.000,A,5104.0859,N,11405.7387,W,0.09,194.17,0903,,,D', /date "0903"/],
      ['GPVTG,054.7,T,034.4,M,005.5,N,fast,K,A', /speed km\/h "fast"/],
      ['GPGSA,A,4,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5', /fix mode "4"/],
      ['GNGNS,014035.00,4332.69262,S', /needs at least 9/],
      ['GNGNS,014035.00,4332.69262,S,17235.48549,E,,13,0.9,25.63,11.24,,', /mode "" is not one of N, A/],
      ['GNGNS,014035.00,4332.69262,S,17235.48549,E,RX,13,0.9,25.63,11.24,,', /mode "RX"/],
      ['GPGLL,5155.55442,N,00434.65873,E,083723.00', /needs at least 6/],
      ['GPGLL,5155.55442,N,00434.65873,E,083723.00,X,A', /status "X"/],
      ['GPZDA,150119.000,09,03', /needs at least 4/],
      ['GPZDA,150119.000,31,02,2022,,', /date "31,02,2022"/],
      ['GPZDA,150119.000,09,03,22,,', /date "09,03,22"/],
      ['GPZDA,150119.000,09,03,1979,,', /from 1980 on/],
      ['GPZDA,150119.000,09,,2022,,', /date "09,,2022"/],
    ];
    for (const [body, detail] of cases) refused(nmea(body), 'malformed', detail);
  });
});

describe('parseLine', () => {
  it('reads from the last $ and ignores trailing CR and blanks', () => {
    const line = '$GPGSA,A,3,17,28,06,01,30,20,26,13,,,,,1.8,1.1,1.5*33';
    assert.equal(parseLine(`${line}\r`)?.ok, true);
    assert.equal(parseLine(`\x93\xff#garbage${line}  `)?.ok, true);
    assert.equal(parseLine(`$GPGGA,0307${line}`)?.ok, true);
  });

  it('gives nothing for lines without a sentence', () => {
    for (const line of ['', 'GPS emulator v1.0 boot', '0.00,N,0.00,K,N*32', '\x00\x01\x02']) assert.equal(parseLine(line), undefined);
  });
});

describe('parseNmea: fuzz', () => {
  const SEEDS = [
    ...Object.values(BODIES).map((b) => 'GP' + b),
    'GPGSV,3,1,12,17,72,207,32',
    'PMTK011,MTKGPS',
    'GPRMC,000012.000,V,0000.0000,N,00000.0000,E,0.00,0.00,000000,,,N',
  ];
  const ALPHABET = '$*,.-+0123456789ABCDEFNSEWAVTKMn \r\n\x00\xff';

  function mutate(rng: Random, body: string): string {
    const chars = [...body];
    const edits = rng.int(1, 4);
    for (let e = 0; e < edits; e++) {
      const at = rng.int(0, chars.length - 1);
      const op = rng.int(0, 3);
      const c = rng.next() < 0.7 ? ALPHABET[rng.int(0, ALPHABET.length - 1)]! : String.fromCharCode(rng.int(0, 255));
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, c);
      else if (op === 2) chars[at] = c;
      else chars.splice(at, rng.int(0, chars.length - at));
    }
    return chars.join('');
  }

  function check(line: string, r: ParseResult | undefined): void {
    if (r === undefined || !r.ok) {
      if (r) assert.ok(['checksum', 'unknown', 'malformed'].includes(r.reason) && r.detail.length > 0, line);
      return;
    }
    // Whatever is accepted is in range: nothing NaN or impossible leaks through.
    for (const [k, v] of Object.entries(r.sentence)) {
      if (typeof v === 'number') assert.ok(Number.isFinite(v), `${k} in ${JSON.stringify(line)}`);
    }
    const s = r.sentence as { lat?: number; lon?: number; courseDeg?: number; speedKmh?: number; timeMs?: number; dateMs?: number };
    if (s.dateMs !== undefined) assert.ok(s.dateMs >= Date.UTC(1980, 0, 1) && s.dateMs % 86_400_000 === 0, line);
    if (s.lat !== undefined) assert.ok(Math.abs(s.lat) <= 90, line);
    if (s.lon !== undefined) assert.ok(Math.abs(s.lon) <= 180, line);
    if (s.courseDeg !== undefined) assert.ok(s.courseDeg >= 0 && s.courseDeg < 360, line);
    if (s.speedKmh !== undefined) assert.ok(s.speedKmh >= 0, line);
    if (s.timeMs !== undefined) assert.ok(s.timeMs >= 0 && s.timeMs <= 86_401_000, line);
  }

  it('20,000 random and mutated lines never throw, and what passes is sane', () => {
    const rng = new Random(20_240_601);
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let line: string;
      const kind = i % 4;
      if (kind === 0) {
        line = Array.from({ length: rng.int(0, 130) }, () => String.fromCharCode(rng.int(0, 255))).join('');
      } else {
        const body = mutate(rng, SEEDS[rng.int(0, SEEDS.length - 1)]!);
        // Half with a fresh checksum, so the mutations reach the field checks.
        line = kind === 1 ? `$${body}*${hex2(checksum(body))}` : kind === 2 ? mutate(rng, nmea(body)) : `$${body}*00`;
      }
      const r = parseNmea(line);
      check(line, r);
      check(line, parseLine(line));
      if (r.ok) accepted++;
    }
    // The fuzz must reach the field parsers, not stop at the checksum.
    assert.ok(accepted > 200, `only ${accepted} accepted`);
  });
});
