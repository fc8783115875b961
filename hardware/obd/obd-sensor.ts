import { SerialPort } from 'serialport';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import { quantize } from '../../shared/contract/codec.js';
import type { Sample, SensorId } from '../../shared/contract/reading.js';
import { describeAnswer, Elm327, mode01Data, type Elm327Answer } from './elm327.js';
import { POLLED_PIDS, supportedPids, type PolledPid } from './pids.js';

export interface ObdSensorOptions {
  /** Default `obd0`. */
  name?: string;
  path: string;
  /** Tried first; 9600 is tried when the adapter does not answer ATZ at it. Default 38400. */
  baudRate?: number;
  /** One poll cycle (010D, 0105, 010C) starts every pollMs. Default 1000. */
  pollMs?: number;
  /** Per command. Default 2000. */
  timeoutMs?: number;
  /** While the port is gone or the adapter silent, retry this often. Default 1000. */
  reopenMs?: number;
  /** Event time of a sample, from the host's clock (the agent's DeviceClock vouches for it or corrects it). Default Date.now. */
  clock?: () => number;
}

export interface ObdCounters {
  /** Commands the adapter did not answer within timeoutMs. */
  timeouts: number;
  /** Polls the vehicle answered NO DATA. */
  noData: number;
  /** Adapter errors and answers that made no sense (also in health().rejected). */
  rejected: number;
  /** Init sequences completed: the first, and one per reconnect. */
  inits: number;
  /** PIDs the vehicle reported in its 0100 bitmap since the last init. */
  vehiclePids?: string[];
  /** Not polled until the next init: the vehicle lacks the PID or kept answering NO DATA. */
  unsupported: SensorId[];
  /** The rate the adapter last answered ATZ at. */
  baudRate: number;
  /** From the last ATZ banner. */
  adapterVersion?: string;
}

/** After ATZ; ATS0/ATH0 shorten answers (the parser copes either way). */
const INIT_SETTINGS = ['ATE0', 'ATL0', 'ATS0', 'ATH0', 'ATSP0'];
const FALLBACK_BAUD = 9600;
/** NO DATA this many polls in a row and a PID is given up on until the next init. */
const NO_DATA_LIMIT = 3;
/** The first OBD request after ATSP0 makes the adapter try each bus in turn, which takes seconds. */
const SEARCH_TIMEOUT_MS = 10_000;

/**
 * Engine speed, coolant temperature and rpm from an ELM327 OBD-II adapter on a serial port.
 *
 * One loop owns the port: open, init, poll, and after any loss reopen. Trouble never
 * throws; it shows in health(): `down` while the port is gone or the adapter silent,
 * `degraded` while the vehicle side errs (UNABLE TO CONNECT, bus errors, timeouts).
 */
export class ObdSensor implements Sensor {
  readonly name: string;
  private readonly path: string;
  private readonly baudRate: number;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly reopenMs: number;
  private readonly clock: () => number;
  private port: SerialPort | undefined;
  private link: Elm327 | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private initialised = false;
  /** Why no reading can come (port gone, adapter silent). */
  private down: string | undefined;
  /**
   * What went wrong in the last poll cycle, joined by what goes wrong in the current one as
   * it happens: trouble shows at once and clears only after a whole clean cycle.
   */
  private problem: string | undefined;
  private cycleProblems: string[] = [];
  private lastSampleAt: number | undefined;
  private readonly noDataRun = new Map<SensorId, number>();
  private readonly counts: ObdCounters;

  constructor(opts: ObdSensorOptions) {
    this.name = opts.name ?? 'obd0';
    this.path = opts.path;
    this.baudRate = opts.baudRate ?? 38400;
    this.pollMs = opts.pollMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.reopenMs = opts.reopenMs ?? 1000;
    this.clock = opts.clock ?? Date.now;
    this.counts = { timeouts: 0, noData: 0, rejected: 0, inits: 0, unsupported: [], baudRate: this.baudRate };
  }

  /** Returns at once: a missing adapter must not hold up the agent's start. */
  async start(emit: (sample: Sample) => void): Promise<void> {
    if (this.running !== undefined) throw new Error(`${this.name} is already started`);
    this.running = this.run(emit).catch((err: Error) => {
      this.down = `sensor loop failed: ${err.message}`;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const port = this.port;
    this.drop();
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
    await this.running;
  }

  health(): SensorHealth {
    const h: SensorHealth = { state: 'ok', rejected: this.counts.rejected };
    if (this.lastSampleAt !== undefined) h.lastSampleAt = this.lastSampleAt;
    if (this.running === undefined || this.stopped) return { ...h, state: 'down', detail: this.stopped ? 'stopped' : 'not started' };
    if (this.down !== undefined) return { ...h, state: 'down', detail: this.down };
    if (this.problem !== undefined) return { ...h, state: 'degraded', detail: this.problem };
    if (!this.initialised) return { ...h, state: 'starting', detail: `initialising the adapter on ${this.path}` };
    return this.lastSampleAt === undefined ? { ...h, state: 'starting' } : h;
  }

  counters(): ObdCounters {
    return { ...this.counts, unsupported: [...this.counts.unsupported] };
  }

  private async run(emit: (sample: Sample) => void): Promise<void> {
    while (!this.stopped) {
      const ready = (this.link !== undefined || (await this.open())) && (this.initialised || (await this.init()));
      if (!ready) {
        await this.sleep(this.reopenMs);
        continue;
      }
      const began = Date.now();
      await this.pollCycle(emit);
      await this.sleep(this.pollMs - (Date.now() - began));
    }
  }

  private async open(): Promise<boolean> {
    const port = new SerialPort({ path: this.path, baudRate: this.counts.baudRate, autoOpen: false });
    const err = await new Promise<Error | null>((resolve) => port.open(resolve));
    if (err !== null) {
      this.down = `cannot open ${this.path}: ${err.message}; retrying every ${this.reopenMs} ms`;
      return false;
    }
    if (this.stopped) {
      port.close(() => undefined);
      return false;
    }
    const link = new Elm327((data) => port.write(data));
    port.on('data', (chunk: Buffer) => link.receive(chunk));
    port.on('close', (e: Error | null) => this.lost(port, e?.message ?? 'closed'));
    // Errors that matter show up as an unanswered command or a 'close'.
    port.on('error', () => undefined);
    this.port = port;
    this.link = link;
    this.down = undefined;
    this.problem = undefined;
    return true;
  }

  private lost(port: SerialPort, reason: string): void {
    if (port !== this.port) return;
    this.drop();
    if (!this.stopped) this.down = `${this.path} lost (${reason}); reopening every ${this.reopenMs} ms`;
  }

  private drop(): void {
    this.link?.close();
    this.link = undefined;
    this.port = undefined;
    this.initialised = false;
  }

  private async init(): Promise<boolean> {
    this.cycleProblems = [];
    if (!(await this.reset())) return false;
    for (const setting of INIT_SETTINGS) {
      const answer = await this.command(setting, this.timeoutMs);
      if (answer.status === 'timeout' || answer.status === 'closed') {
        this.down ??= `adapter stopped answering during init (${setting}: ${describeAnswer(answer)})`;
        return false;
      }
      // A clone that refuses a setting still reads fine: the parser copes with echo, spaces and headers.
      if (answer.status !== 'ok') this.reject(`${setting}: ${describeAnswer(answer)}`);
    }
    this.counts.unsupported = [];
    delete this.counts.vehiclePids;
    this.noDataRun.clear();
    this.initialised = true;
    this.counts.inits++;
    await this.readVehiclePids();
    return true;
  }

  /** ATZ at the last good rate, then the configured one, then 9600. */
  private async reset(): Promise<boolean> {
    const rates = [...new Set([this.counts.baudRate, this.baudRate, FALLBACK_BAUD])];
    for (const baudRate of rates) {
      const port = this.port;
      if (port === undefined) return false;
      // A rate the port refuses shows as the silence that follows.
      if (port.baudRate !== baudRate) await new Promise<void>((resolve) => port.update({ baudRate }, () => resolve()));
      const answer = await this.command('ATZ', this.timeoutMs);
      if (answer.status === 'closed') return false;
      if (answer.status === 'timeout') continue;
      this.counts.baudRate = baudRate;
      this.down = undefined;
      if (answer.status === 'banner') this.counts.adapterVersion = answer.version;
      return true;
    }
    this.down = `adapter on ${this.path} does not answer ATZ at ${rates.join(' or ')} baud`;
    return false;
  }

  /** 0100: which PIDs the vehicle has. Left unknown on failure, and asked again next cycle. */
  private async readVehiclePids(): Promise<void> {
    const answer = await this.command('0100', Math.max(this.timeoutMs, SEARCH_TIMEOUT_MS));
    if (answer.status !== 'data') {
      if (answer.status !== 'closed' && answer.status !== 'timeout') this.reject(`0100: ${describeAnswer(answer)}`);
      return;
    }
    const bitmap = mode01Data(answer, '00', 4);
    if (!bitmap.ok) return this.reject(`0100: ${bitmap.reason}`);
    const pids = supportedPids(bitmap.data);
    this.counts.vehiclePids = [...pids];
    for (const p of POLLED_PIDS) if (!pids.has(p.pid)) this.giveUp(p.sensor);
  }

  private async pollCycle(emit: (sample: Sample) => void): Promise<void> {
    this.cycleProblems = [];
    if (this.counts.vehiclePids === undefined) await this.readVehiclePids();
    for (const p of POLLED_PIDS) {
      if (this.link === undefined) return;
      if (this.counts.unsupported.includes(p.sensor)) continue;
      this.take(p, await this.command(`01${p.pid}`, this.timeoutMs), emit);
    }
    if (POLLED_PIDS.every((p) => this.counts.unsupported.includes(p.sensor))) {
      this.note(`the vehicle answers none of ${POLLED_PIDS.map((p) => `01${p.pid}`).join(', ')}`);
    }
    this.problem = this.cycleProblems.length > 0 ? this.cycleProblems.join('; ') : undefined;
  }

  private take(p: PolledPid, answer: Elm327Answer, emit: (sample: Sample) => void): void {
    const command = `01${p.pid}`;
    switch (answer.status) {
      case 'data': {
        const r = mode01Data(answer, p.pid, p.bytes);
        if (!r.ok) return this.reject(`${command}: ${r.reason}`);
        this.noDataRun.delete(p.sensor);
        const ts = this.clock();
        this.lastSampleAt = ts;
        emit({ ts, clock: 'unsynced', sensor: p.sensor, value: quantize(p.decode(r.data)), quality: 'good' });
        return;
      }
      case 'no_data': {
        this.counts.noData++;
        const run = (this.noDataRun.get(p.sensor) ?? 0) + 1;
        this.noDataRun.set(p.sensor, run);
        if (run >= NO_DATA_LIMIT) this.giveUp(p.sensor);
        return;
      }
      case 'timeout':
        return this.note(`${command}: no answer within ${this.timeoutMs} ms`);
      case 'closed':
        return;
      default:
        return this.reject(`${command}: ${describeAnswer(answer)}`);
    }
  }

  private async command(command: string, timeoutMs: number): Promise<Elm327Answer> {
    const link = this.link;
    if (link === undefined) return { status: 'closed', raw: '', searching: false };
    const answer = await link.send(command, timeoutMs);
    if (answer.status === 'timeout') this.counts.timeouts++;
    return answer;
  }

  private reject(detail: string): void {
    this.counts.rejected++;
    this.note(detail);
  }

  private note(detail: string): void {
    this.cycleProblems.push(detail);
    this.problem = this.cycleProblems.join('; ');
  }

  private giveUp(sensor: SensorId): void {
    if (!this.counts.unsupported.includes(sensor)) this.counts.unsupported.push(sensor);
  }

  /** A wait that stop() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.stopped) return resolve();
      const timer = setTimeout(() => this.wake?.(), Math.max(0, ms));
      // The agent's lifecycle decides when the process ends, not a sensor's retry timer.
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
