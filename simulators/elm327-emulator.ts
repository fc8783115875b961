import { execFile } from 'node:child_process';
import { SerialPort } from 'serialport';
import type { SensorId } from '../shared/contract/reading.js';
import type { TruckModel } from './truck-model.js';

export interface Elm327EmulatorOptions {
  /** The device end of a serial pair (a pty link in tests). */
  path: string;
  model: TruckModel;
  /** Event time the model is advanced to for each answer. */
  clock?: () => number;
  /** Mode-01 PIDs the vehicle answers, besides the 00/20/40 bitmaps; default every PID it can encode. */
  pids?: readonly string[];
  /** How long the adapter takes to answer; a command arriving meanwhile interrupts it. */
  latencyMs?: number;
  /** Extra time the protocol search before the first vehicle answer takes, and the first request after the key goes off. */
  searchMs?: number;
  /**
   * The adapter's line speed. A pty carries no baud rate, so the adapter compares this with
   * the speed the host set on its end (`hostPath`, read with stty) and, where they differ,
   * hears nothing it understands and answers noise, as a real adapter at another rate does.
   * Without it the adapter understands the host at any rate.
   */
  baudRate?: number;
  /** The host's end of the serial pair; needed with `baudRate`. */
  hostPath?: string;
}

/** A command and what the adapter printed for it (undefined while hung, or not yet). */
export interface Exchange {
  command: string;
  answer?: string;
}

/** One mode-01 data answer, as the vehicle sent it. */
export interface EmulatedAnswer {
  ts: number;
  pid: string;
  bytes: number[];
}

const BANNER = 'ELM327 v1.5';
/** The 11-bit CAN id of the engine ECU's answers, shown with ATH1. */
const ECU_HEADER = '7E8';
/** What ATRV reads on the OBD port's battery pin: a resting battery, and the alternator charging. */
const VOLTS_OFF = 12.4;
const VOLTS_RUNNING = 14.1;
/** How a host at another line speed sees the adapter's answer: framing noise, never a `>` or a CR. */
const NOISE = Buffer.from([0x80, 0x00, 0xf8, 0x80, 0x00]);

/** SAE J1979 encodings, the inverse of the driver's formulas. */
const ENCODERS: Readonly<Record<string, { sensor: SensorId; encode(v: number): number[] }>> = {
  '04': { sensor: 'engine_load', encode: (v) => [clamp((v * 255) / 100, 0xff)] },
  '05': { sensor: 'engine_temp', encode: (v) => [clamp(v + 40, 0xff)] },
  '0C': { sensor: 'rpm', encode: (v) => word(clamp(v * 4, 0xffff)) },
  '0D': { sensor: 'speed', encode: (v) => [clamp(v, 0xff)] },
  '0F': { sensor: 'intake_temp', encode: (v) => [clamp(v + 40, 0xff)] },
  '2F': { sensor: 'fuel_level', encode: (v) => [clamp((v * 255) / 100, 0xff)] },
  '42': { sensor: 'module_voltage', encode: (v) => word(clamp(v * 1000, 0xffff)) },
  '46': { sensor: 'ambient_temp', encode: (v) => [clamp(v + 40, 0xff)] },
};

/**
 * An ELM327 v1.5 on a serial port with a TruckModel behind it: AT settings that change what
 * it prints (echo, linefeeds, spaces, headers), protocol search before the first vehicle
 * answer, the supported-PID bitmaps chained as J1979 has them, NO DATA for what the vehicle
 * does not answer, an ignition key, a line speed, and faults on demand. Unplugging is the
 * serial pair's business (a pty pair's stop/restart): after a replug call `open()` again,
 * which powers the adapter up afresh.
 */
export class Elm327Emulator {
  /** Every command the adapter understood, in order, over every power-up. */
  readonly exchanges: Exchange[] = [];
  readonly answered: EmulatedAnswer[] = [];
  /** Commands that arrived while the previous one was still being answered (the host broke the one-in-flight rule). */
  interrupted = 0;
  /** Commands sent at a line speed other than the adapter's: answered with noise. */
  misheard = 0;
  private port: SerialPort | undefined;
  private input = '';
  private readonly pids: ReadonlySet<string>;
  private readonly clock: () => number;
  private readonly latencyMs: number;
  private readonly searchMs: number;
  private readonly injected: { text: string; command?: string }[] = [];
  private hangUntil = 0;
  private busy: { timer: NodeJS.Timeout; exchange: Exchange } | undefined;
  /** Commands wait here for the line-speed check, so they are still taken in order. */
  private heard: Promise<void> = Promise.resolve();
  private echo = true;
  private linefeeds = false;
  private spaces = true;
  private headers = false;
  private protocolFound = false;
  private key = true;
  /** The ECU just went quiet: the adapter waits out its whole search before saying NO DATA. */
  private searchAfterKeyOff = false;

  constructor(private readonly opts: Elm327EmulatorOptions) {
    if (opts.baudRate !== undefined && opts.hostPath === undefined)
      throw new Error('baudRate needs hostPath: the host end whose speed stands for the host');
    this.pids = new Set(opts.pids ?? Object.keys(ENCODERS));
    this.clock = opts.clock ?? Date.now;
    this.latencyMs = opts.latencyMs ?? 10;
    this.searchMs = opts.searchMs ?? 100;
  }

  /** The ignition key. Off: the ECUs are unpowered, every vehicle request answers NO DATA, ATRV reads a resting battery. */
  get ignition(): boolean {
    return this.key;
  }

  set ignition(on: boolean) {
    if (this.key && !on) this.searchAfterKeyOff = true;
    this.key = on;
  }

  /** Opens the port and powers the adapter up (defaults: echo on, protocol not yet found). */
  async open(): Promise<void> {
    await this.close();
    this.reset();
    const port = new SerialPort({ path: this.opts.path, baudRate: this.opts.baudRate ?? 38400, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => this.receive(chunk.toString('latin1')));
    port.on('close', () => this.unpowered(port));
    // Trouble ends in 'close' (handled above); an 'error' with no listener would crash the test.
    port.on('error', () => undefined);
    this.port = port;
  }

  async close(): Promise<void> {
    const port = this.port;
    this.unpowered(port);
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  /**
   * The next command (the next `command` when given, e.g. `010C`) gets `text` as its answer
   * instead of its own (e.g. `UNABLE TO CONNECT`).
   */
  answerNext(text: string, command?: string): void {
    this.injected.push({ text, command });
  }

  /** Commands arriving in the next `ms` go unanswered, prompt and all. */
  hang(ms: number): void {
    this.hangUntil = Date.now() + ms;
  }

  private reset(): void {
    this.echo = true;
    this.linefeeds = false;
    this.spaces = true;
    this.headers = false;
    this.protocolFound = false;
  }

  private unpowered(port: SerialPort | undefined): void {
    if (port === undefined || port !== this.port) return;
    clearTimeout(this.busy?.timer);
    this.busy = undefined;
    this.port = undefined;
    this.input = '';
  }

  private receive(text: string): void {
    this.input += text;
    let cr: number;
    while ((cr = this.input.indexOf('\r')) >= 0) {
      const command = this.input.slice(0, cr).replace(/\n/g, '');
      this.input = this.input.slice(cr + 1);
      if (this.opts.baudRate === undefined) this.handle(command);
      else this.heard = this.heard.then(() => this.atHostSpeed()).then((same) => (same ? this.handle(command) : this.mishear()));
    }
  }

  /** Whether the host's end is set to the adapter's rate. */
  private atHostSpeed(): Promise<boolean> {
    return new Promise((resolve) => {
      execFile('stty', ['-F', this.opts.hostPath!, 'speed'], (err, stdout) =>
        resolve(err === null && Number(stdout.trim()) === this.opts.baudRate),
      );
    });
  }

  private mishear(): void {
    this.misheard++;
    this.port?.write(NOISE);
  }

  private handle(command: string): void {
    const exchange: Exchange = { command };
    this.exchanges.push(exchange);
    if (this.busy !== undefined) {
      // What a real ELM327 does with input while it works: abandon the command in hand.
      clearTimeout(this.busy.timer);
      this.interrupted++;
      this.answer(this.busy.exchange, this.frame('', ['STOPPED']));
    }
    if (Date.now() < this.hangUntil) return;
    const request = isObdRequest(command);
    let delayMs = this.latencyMs;
    if (request && (!this.protocolFound || (this.searchAfterKeyOff && !this.key))) delayMs += this.searchMs;
    if (request) this.searchAfterKeyOff = false;
    // Echo happens as the characters arrive, so ATE0 is itself still echoed.
    const echoed = this.echo ? `${command}\r` : '';
    const key = command.replace(/\s+/g, '').toUpperCase();
    const i = this.injected.findIndex((x) => x.command === undefined || x.command === key);
    const lines = i >= 0 ? [this.injected.splice(i, 1)[0]!.text] : this.respond(command);
    const text = this.frame(echoed, lines);
    const timer = setTimeout(() => this.answer(exchange, text), delayMs);
    this.busy = { timer, exchange };
  }

  private answer(exchange: Exchange, text: string): void {
    this.busy = undefined;
    exchange.answer = text;
    this.port?.write(Buffer.from(text, 'latin1'));
  }

  private respond(command: string): string[] {
    const c = command.replace(/\s+/g, '').toUpperCase();
    if (c.startsWith('AT')) return this.at(c.slice(2));
    if (!isObdRequest(c)) return ['?'];
    const lines: string[] = [];
    if (!this.protocolFound) {
      this.protocolFound = true;
      lines.push('SEARCHING...');
    }
    const data = this.key && c.startsWith('01') && c.length === 4 ? this.mode01(c.slice(2)) : undefined;
    lines.push(data === undefined ? 'NO DATA' : this.format([0x41, parseInt(c.slice(2), 16), ...data]));
    return lines;
  }

  private at(c: string): string[] {
    if (c === 'Z' || c === 'I') {
      if (c === 'Z') this.reset();
      return [BANNER];
    }
    if (c === 'RV') return [`${(this.running() ? VOLTS_RUNNING : VOLTS_OFF).toFixed(1)}V`];
    const flag = /^([ELSH])([01])$/.exec(c);
    if (flag) {
      const on = flag[2] === '1';
      if (flag[1] === 'E') this.echo = on;
      else if (flag[1] === 'L') this.linefeeds = on;
      else if (flag[1] === 'S') this.spaces = on;
      else this.headers = on;
      return ['OK'];
    }
    if (/^SPA?[0-9A-C]$/.test(c)) {
      this.protocolFound = false;
      return ['OK'];
    }
    return ['?'];
  }

  /** The key is on and the model's engine runs (its day plan may have stopped it). */
  private running(): boolean {
    return this.key && this.opts.model.advance(this.clock()).ignition;
  }

  private mode01(pid: string): number[] | undefined {
    const n = parseInt(pid, 16);
    if (n % 0x20 === 0) return this.bitmap(n);
    const encoder = ENCODERS[pid];
    if (!this.pids.has(pid) || encoder === undefined) return undefined;
    const ts = this.clock();
    this.opts.model.advance(ts);
    const reading = this.opts.model.reading(encoder.sensor);
    if (reading === undefined) return undefined;
    const bytes = encoder.encode(reading.value);
    this.answered.push({ ts, pid, bytes });
    return bytes;
  }

  /**
   * PIDs base+1 … base+0x20, bit 7 of the first byte first. The last bit says the next range
   * has a bitmap of its own; a range no earlier bitmap announced is not answered at all.
   */
  private bitmap(base: number): number[] | undefined {
    const numbers = [...this.pids].map((p) => parseInt(p, 16));
    const hasRange = (b: number) => b === 0 || numbers.some((n) => n > b);
    if (!hasRange(base)) return undefined;
    const out = [0, 0, 0, 0];
    const set = (n: number) => (out[(n - base - 1) >> 3]! |= 0x80 >> ((n - base - 1) & 7));
    for (const n of numbers) if (n > base && n < base + 0x20) set(n);
    if (hasRange(base + 0x20)) set(base + 0x20);
    return out;
  }

  private format(bytes: number[]): string {
    const hex = bytes.map((b) => b.toString(16).toUpperCase().padStart(2, '0'));
    if (this.headers) hex.unshift(ECU_HEADER, bytes.length.toString(16).toUpperCase().padStart(2, '0'));
    return hex.join(this.spaces ? ' ' : '');
  }

  private frame(echoed: string, lines: string[]): string {
    const eol = this.linefeeds ? '\r\n' : '\r';
    return `${echoed}${lines.join(eol)}${eol}${eol}>`;
  }
}

function isObdRequest(c: string): boolean {
  return /^([0-9A-F]{2})+$/i.test(c.replace(/\s+/g, ''));
}

function clamp(n: number, max: number): number {
  return Math.min(max, Math.max(0, Math.round(n)));
}

function word(n: number): number[] {
  return [n >> 8, n & 0xff];
}
