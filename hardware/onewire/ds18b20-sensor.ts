import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import { quantize } from '../../shared/contract/codec.js';
import type { Sample } from '../../shared/contract/reading.js';
import { parseW1Slave } from './w1-slave.js';

export interface Ds18b20Options {
  name?: string;
  /** The 1-Wire sysfs root; tests and non-standard kernels point it elsewhere. */
  root?: string;
  /** Sensor ids (`28-…`) to read; all DS18B20s on the bus when absent. */
  ids?: string[];
  /**
   * How often to read. Each read of w1_slave starts a conversion that takes up to 750 ms
   * at 12 bits, so faster than about once a second only queues reads on the bus.
   */
  intervalMs?: number;
  /** Event time of a sample, from the host's clock (flagged unsynced for the agent's clock to vouch for). Default Date.now. */
  clock?: () => number;
}

const DS18B20_FAMILY = '28-';
const MIN_INTERVAL_MS = 1000;

/** Cargo temperatures from DS18B20 probes on the 1-Wire bus (kernel w1_therm driver). */
export class Ds18b20Sensor implements Sensor {
  readonly name: string;
  private readonly root: string;
  private readonly intervalMs: number;
  private timer?: NodeJS.Timeout;
  private reading = false;
  private rejected = 0;
  private lastSampleAt?: number;
  private problem?: string;

  constructor(private readonly opts: Ds18b20Options = {}) {
    this.name = opts.name ?? 'w1';
    this.root = opts.root ?? '/sys/bus/w1/devices';
    this.intervalMs = Math.max(MIN_INTERVAL_MS, opts.intervalMs ?? 2000);
  }

  async start(emit: (sample: Sample) => void): Promise<void> {
    this.timer = setInterval(() => void this.readAll(emit), this.intervalMs);
    await this.readAll(emit);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
  }

  health(): SensorHealth {
    const state = this.lastSampleAt === undefined ? (this.problem ? 'down' : 'starting') : this.problem ? 'degraded' : 'ok';
    return { state, detail: this.problem, lastSampleAt: this.lastSampleAt, rejected: this.rejected };
  }

  private async readAll(emit: (sample: Sample) => void): Promise<void> {
    if (this.reading) return; // the previous conversions are still running
    this.reading = true;
    const problems: string[] = [];
    try {
      const ids = this.opts.ids ?? (await this.discover());
      if (ids.length === 0) problems.push(`no DS18B20 (${DS18B20_FAMILY}*) under ${this.root}`);
      for (const id of ids) {
        const text = await readFile(join(this.root, id, 'w1_slave'), 'utf8').catch((err: NodeJS.ErrnoException) => {
          problems.push(`${id}: ${err.code ?? err.message}`);
          return undefined;
        });
        if (text === undefined) continue;
        const r = parseW1Slave(text);
        if (!r.ok) {
          this.rejected++;
          problems.push(`${id}: ${r.reason}`);
          continue;
        }
        const ts = (this.opts.clock ?? Date.now)();
        this.lastSampleAt = ts;
        emit({ ts, clock: 'unsynced', sensor: 'container_temp', value: quantize(r.celsius), quality: 'good' });
      }
    } finally {
      this.problem = problems.length > 0 ? problems.join('; ') : undefined;
      this.reading = false;
    }
  }

  private async discover(): Promise<string[]> {
    const entries = await readdir(this.root).catch(() => [] as string[]);
    return entries.filter((e) => e.startsWith(DS18B20_FAMILY)).sort();
  }
}
