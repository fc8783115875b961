import type { Sample } from '../shared/contract/reading.js';

export type SensorState = 'starting' | 'ok' | 'degraded' | 'down';

export interface SensorHealth {
  state: SensorState;
  /** Why it is not ok, in words an operator can act on. */
  detail?: string;
  lastSampleAt?: number;
  /** Input the sensor refused (bad checksums, adapter errors ...), since start. */
  rejected: number;
  /**
   * Values the device sent intact that cannot be true (an OBD-II no-value encoding such as
   * 16383.75 rpm), since start: passed on with quality `bad`, counted apart from `rejected`.
   */
  implausible?: number;
  /**
   * Sound input the sensor set aside, since start: no error, e.g. NMEA sentences a GPS driver
   * does not read and placeholder values such as a receiver's date `000000`.
   */
  ignored?: number;
}

/**
 * Every source of readings (simulated, serial GPS, ELM327, 1-Wire) implements this. The
 * agent does not care how a sensor is read: it takes samples as they come and commits
 * them. A sensor never throws out of `start`'s callback; trouble shows in `health()`.
 */
export interface Sensor {
  /** Instance name, unique within an agent, e.g. `sim-engine` or `gps0`. */
  readonly name: string;
  start(emit: (sample: Sample) => void): Promise<void>;
  stop(): Promise<void>;
  health(): SensorHealth;
}
