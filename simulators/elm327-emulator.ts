import { SerialPort } from 'serialport';
import type { SensorId } from '../shared/contract/reading.js';
import type { TruckModel } from './truck-model.js';

export interface Elm327EmulatorOptions {
  /** The device end of a serial pair (a pty link in tests). */
  path: string;
  model: TruckModel;
  /** Event time the model is advanced to for each answer. */
  clock?: () => number;
  /** Mode-01 PIDs the vehicle answers, besides 00; default 05, 0C, 0D. */
  pids?: readonly string[];
  /** How long the adapter takes to answer; a command arriving meanwhile interrupts it. */
  latencyMs?: number;
  /** Extra time the protocol search before the first vehicle answer takes. */
  searchMs?: number;
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

const ENCODERS: Readonly<Record<string, { sensor: SensorId; encode(v: number): number[] }>> = {
  '0D': { sensor: 'speed', encode: (v) => [clampByte(Math.round(v))] },
  '05': { sensor: 'engine_temp', encode: (v) => [clampByte(Math.round(v) + 40)] },
  '0C': {
    sensor: 'rpm',
    encode: (v) => {
      const quarters = Math.min(0xffff, Math.max(0, Math.round(v * 4)));
      return [quarters >> 8, quarters & 0xff];
    },
  },
};

/**
 * An ELM327 v1.5 on a serial port with a TruckModel behind it: AT settings that change what
 * it prints (echo, linefeeds, spaces, headers), protocol search before the first vehicle
 * answer, NO DATA for what the vehicle does not answer, and faults on demand. Unplugging is
 * the serial pair's business (a pty pair's stop/restart): after a replug call `open()`
 * again, which powers the adapter up afresh.
 */
export class Elm327Emulator {
  /** Every command received, in order, over every power-up. */
  readonly exchanges: Exchange[] = [];
  readonly answered: EmulatedAnswer[] = [];
  /** Commands that arrived while the previous one was still being answered (the host broke the one-in-flight rule). */
  interrupted = 0;
  private port: SerialPort | undefined;
  private input = '';
  private readonly pids: ReadonlySet<string>;
  private readonly clock: () => number;
  private readonly latencyMs: number;
  private readonly searchMs: number;
  private readonly injected: string[] = [];
  private hangUntil = 0;
  private busy: { timer: NodeJS.Timeout; exchange: Exchange } | undefined;
  private echo = true;
  private linefeeds = false;
  private spaces = true;
  private headers = false;
  private protocolFound = false;

  constructor(private readonly opts: Elm327EmulatorOptions) {
    this.pids = new Set(opts.pids ?? ['05', '0C', '0D']);
    this.clock = opts.clock ?? Date.now;
    this.latencyMs = opts.latencyMs ?? 10;
    this.searchMs = opts.searchMs ?? 100;
  }

  /** Opens the port and powers the adapter up (defaults: echo on, protocol not yet found). */
  async open(): Promise<void> {
    await this.close();
    this.reset();
    const port = new SerialPort({ path: this.opts.path, baudRate: 38400, autoOpen: false });
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

  /** The next command gets `text` as its answer instead of its own (e.g. `UNABLE TO CONNECT`). */
  answerNext(text: string): void {
    this.injected.push(text);
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
      this.handle(command);
    }
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
    const searching = !this.protocolFound && isObdRequest(command);
    // Echo happens as the characters arrive, so ATE0 is itself still echoed.
    const echoed = this.echo ? `${command}\r` : '';
    const lines = this.injected.length > 0 ? [this.injected.shift()!] : this.respond(command);
    const text = this.frame(echoed, lines);
    const timer = setTimeout(() => this.answer(exchange, text), this.latencyMs + (searching ? this.searchMs : 0));
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
    const data = c.startsWith('01') && c.length === 4 ? this.mode01(c.slice(2)) : undefined;
    lines.push(data === undefined ? 'NO DATA' : this.format([0x41, parseInt(c.slice(2), 16), ...data]));
    return lines;
  }

  private at(c: string): string[] {
    if (c === 'Z' || c === 'I') {
      if (c === 'Z') this.reset();
      return [BANNER];
    }
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

  private mode01(pid: string): number[] | undefined {
    if (pid === '00') return supportedBitmap(this.pids);
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

function supportedBitmap(pids: ReadonlySet<string>): number[] {
  const out = [0, 0, 0, 0];
  for (const pid of pids) {
    const n = parseInt(pid, 16);
    if (n >= 1 && n <= 32) out[(n - 1) >> 3]! |= 0x80 >> ((n - 1) & 7);
  }
  return out;
}

function clampByte(n: number): number {
  return Math.min(255, Math.max(0, n));
}
