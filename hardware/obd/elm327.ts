/**
 * The ELM327 serial protocol: one command at a time, its answer is everything up to the `>`
 * prompt. An adapter that gets a second command while busy abandons the first (it prints
 * STOPPED), so commands queue here and only the head is ever on the wire.
 *
 * Every answer, including the adapter's own error words, becomes a typed Elm327Answer;
 * nothing here throws on what the adapter sends.
 */

/** Answers that carry nothing beyond their status. */
type PlainStatus =
  'ok' | 'no_data' | 'unable_to_connect' | 'can_error' | 'stopped' | 'unknown_command' | 'buffer_full' | 'timeout' | 'closed';

interface AnswerBase {
  /** What came before the prompt, NULs removed (or what had come when it timed out). */
  raw: string;
  /** The adapter searched for the vehicle's protocol before this answer (`SEARCHING...`). */
  searching: boolean;
}

export type Elm327Answer = AnswerBase &
  (
    | { status: 'banner'; version: string }
    /** The adapter's supply voltage (ATRV), which is the vehicle battery's. */
    | { status: 'voltage'; volts: number }
    /** Hex lines, upper case, echo and progress lines dropped. */
    | { status: 'data'; lines: string[] }
    /** The line the adapter said, e.g. `BUS INIT: ...ERROR`, or text that is no answer at all. */
    | { status: 'bus_error' | 'garbled'; text: string }
    | { status: PlainStatus }
  );

export type Elm327Status = Elm327Answer['status'];

/** Statuses matched on the line with every space removed, since ATS0 removes them from some clones' words too. */
const STATUS_WORDS: readonly [RegExp, PlainStatus | 'bus_error'][] = [
  [/^NODATA$/, 'no_data'],
  [/^UNABLETOCONNECT$/, 'unable_to_connect'],
  [/^CANERROR$/, 'can_error'],
  [/^STOPPED$/, 'stopped'],
  [/^\?$/, 'unknown_command'],
  [/^BUFFERFULL$/, 'buffer_full'],
  [/^(BUSINIT:?\.*ERROR|BUSBUSY|BUSERROR|FBERROR|<?DATAERROR|<RXERROR|ERR\d\d)$/, 'bus_error'],
];
/** Lines the adapter prints on the way to an answer. */
const PROGRESS = /^(SEARCHING\.*|BUSINIT:?\.*(OK)?)$/;
const HEX = /^[0-9A-F]+$/;
const VOLTS = /^(\d{1,2}(?:\.\d{1,2})?)V$/;
const BANNER = /ELM327\s*(v[\w.]+)?/i;

/** Classifies one answer (the text before `>`) to `command`. */
export function classify(text: string, command = ''): Elm327Answer {
  const raw = text.replace(/\0/g, '');
  let lines = raw
    .split(/[\r\n]+/)
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const echo = squash(command);
  // Echo is on until ATE0 is through, and again after any adapter reset.
  if (echo !== '' && lines.length > 0 && squash(lines[0]!) === echo) lines = lines.slice(1);
  let searching = false;
  while (lines.length > 0 && PROGRESS.test(squash(lines[0]!))) {
    searching ||= squash(lines[0]!).startsWith('SEARCHING');
    lines = lines.slice(1);
  }
  const base = { raw, searching };
  const banner = lines.map((l) => BANNER.exec(l)).find((m) => m !== null);
  if (banner) return { ...base, status: 'banner', version: banner[1] ?? '' };
  for (const line of lines) {
    const key = squash(line);
    const word = STATUS_WORDS.find(([re]) => re.test(key));
    if (word === undefined) continue;
    const status = word[1];
    return status === 'bus_error' ? { ...base, status, text: line } : { ...base, status };
  }
  const keys = lines.map(squash);
  const volts = keys.length === 1 ? VOLTS.exec(keys[0]!) : null;
  if (volts) return { ...base, status: 'voltage', volts: Number(volts[1]) };
  if (keys.length > 0 && keys.every((k) => k === 'OK')) return { ...base, status: 'ok' };
  if (keys.length > 0 && keys.every((k) => HEX.test(k))) return { ...base, status: 'data', lines: lines.map((l) => l.toUpperCase()) };
  return { ...base, status: 'garbled', text: lines.join(' | ') };
}

const PLAIN_TEXT: Readonly<Record<PlainStatus, string>> = {
  ok: 'OK',
  no_data: 'NO DATA',
  unable_to_connect: 'UNABLE TO CONNECT',
  can_error: 'CAN ERROR',
  stopped: 'STOPPED',
  unknown_command: '? (command not understood)',
  buffer_full: 'BUFFER FULL',
  timeout: 'no answer',
  closed: 'port closed',
};

/** The answer in an operator's words, for health details and logs. */
export function describeAnswer(answer: Elm327Answer): string {
  switch (answer.status) {
    case 'banner':
      return `ELM327 ${answer.version}`.trim();
    case 'voltage':
      return `${answer.volts} V`;
    case 'data':
      return answer.lines.join(' ');
    case 'bus_error':
      return answer.text;
    case 'garbled':
      return `garbled answer ${JSON.stringify(answer.text)}`;
    default:
      return PLAIN_TEXT[answer.status];
  }
}

export type Mode01Result = { ok: true; data: number[] } | { ok: false; reason: string };

/**
 * The `bytes` data bytes after `41 pid` in a data answer. Tolerates headers (an 11-bit CAN
 * id like `7E8`, or 29-bit / J1850 header bytes), spaces or none, a length byte, a trailing
 * checksum, and several ECUs answering on separate lines (the first complete answer wins).
 */
export function mode01Data(answer: Elm327Answer, pid: string, bytes: number): Mode01Result {
  if (answer.status !== 'data') return { ok: false, reason: `not a data answer: ${answer.status}` };
  const want = parseInt(pid, 16);
  for (const line of answer.lines) {
    const b = lineBytes(line);
    for (let i = 0; b !== undefined && i + 1 < b.length; i++) {
      if (b[i] === 0x41 && b[i + 1] === want && b.length >= i + 2 + bytes) return { ok: true, data: b.slice(i + 2, i + 2 + bytes) };
    }
  }
  return { ok: false, reason: `no "41 ${pid}" with ${bytes} data byte(s) in ${JSON.stringify(answer.lines.join(' '))}` };
}

function lineBytes(line: string): number[] | undefined {
  const groups = line.split(/\s+/);
  // An 11-bit CAN header is three hex digits: the one odd-length group a line can start with.
  if (groups.length > 1 && groups[0]!.length === 3) groups.shift();
  let hex = groups.join('');
  if (groups.length === 1 && hex.length % 2 === 1) hex = hex.slice(3);
  if (hex.length % 2 === 1) return undefined;
  const out: number[] = [];
  for (let i = 0; i < hex.length; i += 2) out.push(parseInt(hex.slice(i, i + 2), 16));
  return out;
}

function squash(s: string): string {
  return s.replace(/\s+/g, '').toUpperCase();
}

/** An answer longer than this without a prompt is not an ELM327 talking (or the baud rate is wrong). */
const MAX_ANSWER_CHARS = 4096;

interface Pending {
  command: string;
  timeoutMs: number;
  resolve(answer: Elm327Answer): void;
}

/**
 * One adapter session: lives as long as the port is open. The owner writes with `write`
 * and passes everything the port reads to `receive`.
 *
 * A command that times out may still be answered later. That late answer either arrives
 * with nothing in flight (dropped, counted in `unsolicited`) or is taken for the next
 * command's, whose PID then does not match (mode01Data refuses it); either way the
 * session is back in step one command later.
 */
export class Elm327 {
  private readonly queue: Pending[] = [];
  private current: Pending | undefined;
  private buffer = '';
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Characters that arrived with no command in flight. */
  unsolicited = 0;

  constructor(private readonly write: (data: string) => void) {}

  /** Resolves with the answer, a timeout or `closed`; never rejects. */
  send(command: string, timeoutMs: number): Promise<Elm327Answer> {
    return new Promise((resolve) => {
      if (this.closed) return resolve({ status: 'closed', raw: '', searching: false });
      this.queue.push({ command, timeoutMs, resolve });
      this.next();
    });
  }

  receive(chunk: Buffer | string): void {
    const text = typeof chunk === 'string' ? chunk : chunk.toString('latin1');
    if (this.current === undefined) {
      this.unsolicited += text.length;
      return;
    }
    this.buffer += text;
    const end = this.buffer.indexOf('>');
    if (end >= 0) {
      this.unsolicited += this.buffer.length - end - 1;
      this.finish(classify(this.buffer.slice(0, end), this.current.command));
    } else if (this.buffer.length > MAX_ANSWER_CHARS) {
      this.finish({ status: 'garbled', raw: this.buffer, searching: false, text: `over ${MAX_ANSWER_CHARS} characters without a prompt` });
    }
  }

  /** The port is gone: everything in flight or queued resolves `closed`. */
  close(): void {
    this.closed = true;
    const pending = this.current ? [this.current, ...this.queue] : [...this.queue];
    this.queue.length = 0;
    this.current = undefined;
    clearTimeout(this.timer);
    for (const p of pending) p.resolve({ status: 'closed', raw: '', searching: false });
  }

  private next(): void {
    if (this.current !== undefined || this.closed) return;
    const head = this.queue.shift();
    if (head === undefined) return;
    this.current = head;
    this.buffer = '';
    this.timer = setTimeout(() => this.finish({ status: 'timeout', raw: this.buffer, searching: false }), head.timeoutMs);
    this.write(`${head.command}\r`);
  }

  private finish(answer: Elm327Answer): void {
    const done = this.current!;
    clearTimeout(this.timer);
    this.current = undefined;
    this.buffer = '';
    done.resolve(answer);
    this.next();
  }
}
