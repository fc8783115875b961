import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes the files the kernel's w1_therm driver would show for DS18B20 probes, so the
 * 1-Wire sensor reads exactly what it reads on a Pi (a sysfs tree cannot be faked better
 * without the kernel).
 */
export class OneWireFixture {
  constructor(private readonly root: string) {
    mkdirSync(root, { recursive: true });
  }

  /** A good reading of `celsius` (CRC YES). */
  temperature(id: string, celsius: number): void {
    this.write(id, 'YES', Math.round(celsius * 1000));
  }

  /** A read whose CRC failed (noise on a long cable). */
  crcFailure(id: string, celsius: number): void {
    this.write(id, 'NO', Math.round(celsius * 1000));
  }

  /** The power-on value: the probe answered but never converted. */
  powerOn(id: string): void {
    this.write(id, 'YES', 85_000);
  }

  /** The probe fell off the bus. */
  remove(id: string): void {
    rmSync(join(this.root, id), { recursive: true, force: true });
  }

  private write(id: string, crc: 'YES' | 'NO', milli: number): void {
    mkdirSync(join(this.root, id), { recursive: true });
    const bytes = '72 01 4b 46 7f ff 0e 10 57';
    writeFileSync(join(this.root, id, 'w1_slave'), `${bytes} : crc=57 ${crc}\n${bytes} t=${milli}\n`);
  }
}
