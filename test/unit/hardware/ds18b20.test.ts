import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { Ds18b20Sensor } from '../../../hardware/onewire/ds18b20-sensor.js';
import { parseW1Slave } from '../../../hardware/onewire/w1-slave.js';
import type { Sample } from '../../../shared/contract/reading.js';
import { OneWireFixture } from '../../../simulators/onewire-fixture.js';

const A = '28-0000075a1b2c';
const B = '28-0000075a3d4e';

async function readOnce(root: string, ids?: string[]): Promise<{ samples: Sample[]; sensor: Ds18b20Sensor }> {
  const samples: Sample[] = [];
  const sensor = new Ds18b20Sensor({ root, ids, intervalMs: 60_000 });
  await sensor.start((s) => samples.push(s));
  await sensor.stop();
  return { samples, sensor };
}

describe('w1_slave parsing', () => {
  it('takes only CRC YES lines and refuses the power-on value', () => {
    assert.deepEqual(parseW1Slave('72 01 : crc=57 YES\n72 01 t=23125\n'), { ok: true, celsius: 23.125 });
    assert.deepEqual(parseW1Slave('72 01 : crc=57 YES\n72 01 t=-1250\n'), { ok: true, celsius: -1.25 });
    assert.deepEqual(parseW1Slave('72 01 : crc=57 NO\n72 01 t=23125\n'), { ok: false, reason: 'CRC check failed' });
    assert.match((parseW1Slave('72 01 : crc=57 YES\n72 01 t=85000\n') as { reason: string }).reason, /power-on value/);
    assert.match((parseW1Slave('72 01 : crc=57 YES\n72 01 t=200000\n') as { reason: string }).reason, /outside/);
    assert.equal(parseW1Slave('').ok, false);
    assert.equal(parseW1Slave('garbage\n').ok, false);
  });
});

describe('DS18B20 sensor', () => {
  it('reads every probe on the bus as a cargo temperature', async () => {
    const root = mkdtempSync(join(tmpdir(), 'w1-'));
    const bus = new OneWireFixture(root);
    bus.temperature(A, 4.5);
    bus.temperature(B, -18.25);
    const { samples, sensor } = await readOnce(root);
    assert.deepEqual(
      samples.map((s) => [s.sensor, s.value, s.quality]),
      [
        ['container_temp', 4.5, 'good'],
        ['container_temp', -18.25, 'good'],
      ],
    );
    assert.equal(sensor.health().state, 'ok');
  });

  it('drops a failed CRC and a power-on value, counts them, and says which probe', async () => {
    const root = mkdtempSync(join(tmpdir(), 'w1-'));
    const bus = new OneWireFixture(root);
    bus.crcFailure(A, 4.5);
    bus.powerOn(B);
    const { samples, sensor } = await readOnce(root);
    assert.deepEqual(samples, []);
    const h = sensor.health();
    assert.equal(h.rejected, 2);
    assert.match(h.detail!, new RegExp(`${A}: CRC check failed`));
    assert.match(h.detail!, new RegExp(`${B}: t=85000`));
  });

  it('reports a configured probe that fell off the bus, and reads the others', async () => {
    const root = mkdtempSync(join(tmpdir(), 'w1-'));
    const bus = new OneWireFixture(root);
    bus.temperature(A, 3);
    const { samples, sensor } = await readOnce(root, [A, B]);
    assert.equal(samples.length, 1);
    assert.equal(sensor.health().state, 'degraded');
    assert.match(sensor.health().detail!, new RegExp(`${B}: ENOENT`));
  });

  it('is down with a clear reason when there is no 1-Wire bus at all', async () => {
    const { samples, sensor } = await readOnce(join(tmpdir(), 'no-such-w1-root'));
    assert.deepEqual(samples, []);
    assert.equal(sensor.health().state, 'down');
    assert.match(sensor.health().detail!, /no DS18B20 \(28-\*\) under/);
  });
});
