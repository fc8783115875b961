/**
 * The kernel's w1_therm `w1_slave` file of a DS18B20:
 *   72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
 *   72 01 4b 46 7f ff 0e 10 57 t=23125
 * Only a `YES` CRC line is trusted, and t=85000 is the power-on register value, not a
 * temperature: a conversion that never ran.
 */
export type W1Result = { ok: true; celsius: number } | { ok: false; reason: string };

const POWER_ON_MILLIDEGREES = 85_000;

export function parseW1Slave(text: string): W1Result {
  const [crcLine, dataLine] = text.split('\n');
  if (crcLine === undefined || !/crc=[0-9a-f]{2} (YES|NO)\s*$/i.test(crcLine)) return { ok: false, reason: 'no CRC line' };
  if (!/YES\s*$/.test(crcLine)) return { ok: false, reason: 'CRC check failed' };
  const t = /t=(-?\d+)\s*$/.exec(dataLine ?? '');
  if (!t) return { ok: false, reason: 'no t= value' };
  const milli = Number(t[1]);
  if (milli === POWER_ON_MILLIDEGREES) return { ok: false, reason: 't=85000 is the power-on value (no conversion)' };
  // The DS18B20's range is −55…+125 °C; anything else is a bus error read as data.
  if (milli < -55_000 || milli > 125_000) return { ok: false, reason: `t=${milli} outside the sensor's range` };
  return { ok: true, celsius: milli / 1000 };
}
