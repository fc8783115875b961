import { SerialPort } from 'serialport';
import type { Sensor, SensorHealth } from '../../agent/sensor.js';
import { quantize } from '../../shared/contract/codec.js';
import type { Sample, SensorId } from '../../shared/contract/reading.js';
import type { Logger } from '../../shared/log.js';
import { probeOrder, readRememberedBaud, rememberBaud } from './baud-rates.js';
import { describeAnswer, Elm327, mode01Data, type Elm327Answer } from './elm327.js';
import { EcuSilence, engineRunning } from './ignition.js';
import { duePids, pidHex, POLLED_PIDS, readPid, supportedPids, type PolledPid } from './pids.js';

export interface ObdSensorOptions {
  /** Default `obd0`. */
  name?: string;
  path: string;
  /** Tried after the rate remembered in `stateFile` and before the other common rates. Default 38400. */
  baudRate?: number;
  /** Where the rate the adapter answered at is kept, so that the next start tries it first. */
  stateFile?: string;
  /** One poll cycle (coolant, speed, rpm, load and one slower PID) starts every pollMs. Default 1000. */
  pollMs?: number;
  /** Per command. Default 2000. */
  timeoutMs?: number;
  /** While the port is gone or the adapter silent, retry this often. Default 1000. */
  reopenMs?: number;
  /** Event time of a sample, from the host's clock (the agent's DeviceClock vouches for it or corrects it). Default Date.now. */
  clock?: () => number;
  /** Health changes (with their reasons), the adapter found, the vehicle's PIDs, the ECU back after a silence. */
  log?: Logger;
}

export interface ObdCounters {
  /** Commands the adapter did not answer within timeoutMs. */
  timeouts: number;
  /** Polls the vehicle answered NO DATA. */
  noData: number;
  /** Adapter errors and answers that made no sense (also in health().rejected). */
  rejected: number;
  /** Values that cannot be true (a no-value encoding), emitted with quality bad (also in health().implausible). */
  implausible: number;
  /** Init sequences completed: the first, and one per reconnect. */
  inits: number;
  /** PIDs the vehicle reported in its 0100/0120/0140 bitmaps since the last init. */
  vehiclePids?: string[];
  /** Sensors the vehicle's bitmaps lack: not polled until the next init. */
  unsupported: SensorId[];
  /** The rate the adapter last answered at. */
  baudRate: number;
  /** From the last ATZ banner. */
  adapterVersion?: string;
  /** The adapter's supply voltage (the vehicle battery's) when last read: whenever the ECU goes quiet. */
  supplyVolts?: number;
}

/** After ATZ; ATS0/ATH0 shorten answers (the parser copes either way). */
const INIT_SETTINGS = ['ATE0', 'ATL0', 'ATS0', 'ATH0', 'ATSP0'];
/** NO DATA this many polls in a row and health names the PID; it is still polled, as the ECU may answer again. */
const NO_DATA_LIMIT = 3;
/** The first OBD request after ATSP0 or a silence makes the adapter try each bus in turn, which takes seconds. */
const SEARCH_TIMEOUT_MS = 10_000;
/** ATI is answered by the adapter itself at once: a short wait finds a wrong line speed quickly. */
const PROBE_TIMEOUT_MS = 500;
/** The bitmap of the highest range with a PID polled here (0142, 0146). */
const LAST_BITMAP = 0x40;

/**
 * Engine and context readings from an ELM327 OBD-II adapter on a serial port.
 *
 * One loop owns the port: open, find the line speed, init, poll, and after any loss reopen.
 * Trouble never throws; it shows in health(): `down` while the port is gone or the adapter
 * silent, `degraded` while the vehicle side errs (UNABLE TO CONNECT, bus errors, timeouts, a
 * PID answering NO DATA, implausible values) or the ECU is silent (engine off).
 */
export class ObdSensor implements Sensor {
  readonly name: string;
  private readonly path: string;
  private readonly baudRate: number;
  private readonly stateFile: string | undefined;
  private readonly pollMs: number;
  private readonly timeoutMs: number;
  private readonly reopenMs: number;
  private readonly clock: () => number;
  private readonly log: Logger | undefined;
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
  /** The rate in the state file. */
  private remembered: number | undefined;
  private cycle = 0;
  private readonly silence = new EcuSilence();
  /** The adapter answered ATRV with `?`: a clone without it; not asked again until the next init. */
  private noVoltage = false;
  /** PIDs answering NO DATA, and how many polls in a row. */
  private readonly noDataRun = new Map<PolledPid, number>();
  /** PIDs whose last value could not be true, and why. */
  private readonly implausibleNow = new Map<PolledPid, string>();
  /** The health last logged. */
  private reported = '';
  private readonly counts: ObdCounters;

  constructor(opts: ObdSensorOptions) {
    this.name = opts.name ?? 'obd0';
    this.path = opts.path;
    this.baudRate = opts.baudRate ?? 38400;
    this.stateFile = opts.stateFile;
    this.pollMs = opts.pollMs ?? 1000;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.reopenMs = opts.reopenMs ?? 1000;
    this.clock = opts.clock ?? Date.now;
    this.log = opts.log;
    const remembered = this.stateFile === undefined ? undefined : readRememberedBaud(this.stateFile);
    if (remembered !== undefined && 'problem' in remembered) {
      this.log?.warn({ sensor: this.name, reason: remembered.problem }, 'OBD baud rate file unusable: probing from the configured rate');
    } else this.remembered = remembered?.baudRate;
    this.counts = {
      timeouts: 0,
      noData: 0,
      rejected: 0,
      implausible: 0,
      inits: 0,
      unsupported: [],
      baudRate: this.remembered ?? this.baudRate,
    };
  }

  /** Returns at once: a missing adapter must not hold up the agent's start. */
  async start(emit: (sample: Sample) => void): Promise<void> {
    if (this.running !== undefined) throw new Error(`${this.name} is already started`);
    this.running = this.run(emit).catch((err: Error) => {
      this.down = `sensor loop failed: ${err.message}`;
      this.report();
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
    const h: SensorHealth = { state: 'ok', rejected: this.counts.rejected, implausible: this.counts.implausible };
    if (this.lastSampleAt !== undefined) h.lastSampleAt = this.lastSampleAt;
    if (this.running === undefined || this.stopped) return { ...h, state: 'down', detail: this.stopped ? 'stopped' : 'not started' };
    if (this.down !== undefined) return { ...h, state: 'down', detail: this.down };
    if (this.silence.since !== undefined) {
      return {
        ...h,
        state: 'degraded',
        detail: [this.silenceDetail(this.silence.since), this.problem].filter((d) => d !== undefined).join('; '),
      };
    }
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
      this.report();
      if (!ready) {
        await this.sleep(this.reopenMs);
        continue;
      }
      const began = Date.now();
      await this.pollCycle(emit);
      this.report();
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
    if (!(await this.findLineSpeed()) || !(await this.reset())) return false;
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
    this.forgetPids();
    this.silence.end(this.clock());
    this.noVoltage = false;
    this.initialised = true;
    this.counts.inits++;
    if ((await this.readVehiclePids()) === 'silent') await this.silentFromNow();
    return true;
  }

  /** ATI at each rate in turn, from the last that worked, until the adapter answers; the rate found is remembered. */
  private async findLineSpeed(): Promise<boolean> {
    const rates = probeOrder(this.counts.baudRate, this.baudRate);
    for (const baudRate of rates) {
      const port = this.port;
      const link = this.link;
      if (port === undefined || link === undefined) return false;
      // A rate the port refuses shows as the silence that follows.
      if (port.baudRate !== baudRate) await new Promise<void>((resolve) => port.update({ baudRate }, () => resolve()));
      // At another rate the adapter hears noise and answers noise: no prompt, or one among garbage.
      const answer = await link.send('ATI', Math.min(this.timeoutMs, PROBE_TIMEOUT_MS));
      if (answer.status === 'closed') return false;
      if (answer.status === 'timeout' || answer.status === 'garbled') continue;
      this.counts.baudRate = baudRate;
      this.remember(baudRate);
      return true;
    }
    this.down = `adapter on ${this.path} does not answer at ${rates.join(', ')} baud`;
    return false;
  }

  private remember(baudRate: number): void {
    if (this.stateFile === undefined || baudRate === this.remembered) return;
    try {
      rememberBaud(this.stateFile, baudRate);
      this.remembered = baudRate;
    } catch (err) {
      this.log?.warn(
        { sensor: this.name, file: this.stateFile, reason: (err as Error).message },
        'cannot keep the OBD adapter baud rate: the next start probes again',
      );
    }
  }

  /** ATZ at the rate found. */
  private async reset(): Promise<boolean> {
    const answer = await this.command('ATZ', this.timeoutMs);
    if (answer.status === 'closed') return false;
    if (answer.status === 'timeout') {
      this.down = `adapter on ${this.path} answered ATI at ${this.counts.baudRate} baud, then not ATZ`;
      return false;
    }
    this.down = undefined;
    if (answer.status === 'banner') this.counts.adapterVersion = answer.version;
    this.log?.info(
      { sensor: this.name, path: this.path, baudRate: this.counts.baudRate, adapter: describeAnswer(answer) },
      'OBD adapter found',
    );
    return true;
  }

  /**
   * Which PIDs the vehicle has, from the 0100 bitmap and those it chains to (0120, 0140).
   * `silent`: the ECU did not answer 0100, which every ECU answers when powered. `failed`:
   * left unknown and asked again next cycle, every PID being polled meanwhile.
   */
  private async readVehiclePids(): Promise<'read' | 'silent' | 'failed'> {
    const pids = new Set<string>();
    for (let base = 0; base <= LAST_BITMAP; base += 0x20) {
      const range = pidHex(base);
      if (base > 0 && !pids.has(range)) break;
      const command = `01${range}`;
      const timeoutMs = base === 0 ? Math.max(this.timeoutMs, SEARCH_TIMEOUT_MS) : this.timeoutMs;
      const answer = await this.command(command, timeoutMs);
      if (base === 0 && isSilence(answer)) return 'silent';
      const bitmap = mode01Data(answer, range, 4);
      if (!bitmap.ok) {
        if (answer.status === 'timeout') this.note(`${command}: no answer within ${timeoutMs} ms`);
        else if (answer.status !== 'closed')
          this.reject(`${command}: ${answer.status === 'data' ? bitmap.reason : describeAnswer(answer)}`);
        return 'failed';
      }
      for (const pid of supportedPids(bitmap.data, base)) pids.add(pid);
    }
    this.counts.vehiclePids = [...pids];
    this.counts.unsupported = POLLED_PIDS.filter((p) => !pids.has(p.pid)).map((p) => p.sensor);
    this.log?.info(
      { sensor: this.name, vehiclePids: this.counts.vehiclePids, unsupported: this.counts.unsupported },
      'OBD vehicle PIDs read',
    );
    return 'read';
  }

  private async pollCycle(emit: (sample: Sample) => void): Promise<void> {
    this.cycleProblems = [];
    if (this.silence.since !== undefined) {
      if (!(await this.askSilentEcu())) return this.endCycle();
    } else if (this.counts.vehiclePids === undefined && (await this.readVehiclePids()) === 'silent') {
      await this.silentFromNow();
      return this.endCycle();
    }
    const polled = POLLED_PIDS.filter((p) => !this.counts.unsupported.includes(p.sensor));
    if (polled.length === 0) this.note(`the vehicle supports none of ${POLLED_PIDS.map((p) => `01${p.pid}`).join(', ')}`);
    let answered = false;
    let quiet = false;
    for (const p of duePids(polled, this.cycle++)) {
      if (this.link === undefined) return;
      const answer = await this.command(`01${p.pid}`, this.timeoutMs);
      answered ||= answer.status === 'data';
      quiet ||= isSilence(answer);
      this.take(p, answer, emit);
    }
    // Every PID quiet at once is the ECU, not the PIDs: the engine stopped, or the ECU went away.
    const silent = quiet && !answered;
    if (this.silence.cycle(silent, this.clock(), silent ? await this.engineOff() : undefined)) this.forgetPids();
    this.endCycle();
  }

  /** While the ECU is silent: the supply voltage each cycle, and the ECU asked again when due. True once it answers. */
  private async askSilentEcu(): Promise<boolean> {
    if (!this.silence.probeDue(await this.engineOff())) return false;
    if ((await this.readVehiclePids()) !== 'read') return false;
    const silentMs = this.silence.end(this.clock());
    this.log?.info({ sensor: this.name, silentMs, supplyVolts: this.counts.supplyVolts }, 'OBD ECU answers again: polling resumes');
    return true;
  }

  /** The ECU did not answer 0100, which every powered ECU answers; the supply voltage says whether the engine stopped. */
  private async silentFromNow(): Promise<void> {
    this.silence.begin(this.clock());
    this.forgetPids();
    await this.engineOff();
  }

  /** What each PID said before a silence was the silence coming, not a fault of its own. */
  private forgetPids(): void {
    this.noDataRun.clear();
    this.implausibleNow.clear();
  }

  /** ATRV: whether the supply voltage says the engine is off; undefined when the adapter cannot say. */
  private async engineOff(): Promise<boolean | undefined> {
    if (this.noVoltage) return undefined;
    const answer = await this.command('ATRV', this.timeoutMs);
    if (answer.status === 'voltage') {
      this.counts.supplyVolts = answer.volts;
      return !engineRunning(answer.volts);
    }
    if (answer.status === 'timeout') this.note(`ATRV: no answer within ${this.timeoutMs} ms`);
    else if (answer.status !== 'closed') this.reject(`ATRV: ${describeAnswer(answer)}`);
    this.noVoltage = answer.status === 'unknown_command';
    return undefined;
  }

  private take(p: PolledPid, answer: Elm327Answer, emit: (sample: Sample) => void): void {
    const command = `01${p.pid}`;
    switch (answer.status) {
      case 'data': {
        const r = mode01Data(answer, p.pid, p.bytes);
        if (!r.ok) return this.reject(`${command}: ${r.reason}`);
        this.noDataRun.delete(p);
        const { value, implausible } = readPid(p, r.data);
        // Kept and sent, but marked bad: stored for the record, never in a rule's window.
        if (implausible !== undefined) {
          this.counts.implausible++;
          this.implausibleNow.set(p, implausible);
        } else this.implausibleNow.delete(p);
        const ts = this.clock();
        this.lastSampleAt = ts;
        emit({ ts, clock: 'unsynced', sensor: p.sensor, value: quantize(value), quality: implausible === undefined ? 'good' : 'bad' });
        return;
      }
      case 'no_data':
        // The ECU had nothing to say now (busy, or the engine stopping): asked again next time.
        this.counts.noData++;
        this.noDataRun.set(p, (this.noDataRun.get(p) ?? 0) + 1);
        return;
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
    this.endCycle();
  }

  /**
   * The problem health shows: this cycle's (and the last's until this one ends), plus what
   * lasts across cycles (a PID that keeps answering NO DATA, one whose values cannot be true),
   * which would otherwise come and go with the slow PIDs' turns.
   */
  private endCycle(): void {
    const lasting = [
      ...[...this.noDataRun]
        .filter(([, run]) => run >= NO_DATA_LIMIT)
        .map(([p]) => `01${p.pid} (${p.sensor}): NO DATA ${NO_DATA_LIMIT} or more polls in a row`),
      ...[...this.implausibleNow].map(([p, why]) => `01${p.pid} (${p.sensor}): ${why}; marked bad`),
    ];
    const all = [...this.cycleProblems, ...lasting];
    this.problem = all.length > 0 ? all.join('; ') : undefined;
  }

  private silenceDetail(since: number): string {
    const volts = this.counts.supplyVolts;
    const engine =
      volts === undefined
        ? ''
        : engineRunning(volts)
          ? ' (the supply voltage says the engine runs)'
          : ' (the supply voltage says the engine is off)';
    return `engine off / ECU silent: no answer from the vehicle since ${new Date(since).toISOString()}${engine}; polling resumes when it answers`;
  }

  /** Logs each change of health, with its reason. */
  private report(): void {
    if (this.log === undefined) return;
    const h = this.health();
    const now = `${h.state} ${h.detail ?? ''}`;
    if (now === this.reported) return;
    this.reported = now;
    const fields = { sensor: this.name, state: h.state, detail: h.detail, rejected: h.rejected, implausible: h.implausible };
    if (h.state === 'ok' || h.state === 'starting') this.log.info(fields, 'OBD sensor health');
    else this.log.warn(fields, 'OBD sensor health');
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

/**
 * What the adapter says when no ECU answers: NO DATA, UNABLE TO CONNECT (its protocol search
 * found no ECU) and, on K-line vehicles, BUS INIT: ...ERROR (the ECU did not wake up).
 */
function isSilence(answer: Elm327Answer): boolean {
  return (
    answer.status === 'no_data' ||
    answer.status === 'unable_to_connect' ||
    (answer.status === 'bus_error' && /^BUS\s*INIT/i.test(answer.text))
  );
}
