import assert from 'node:assert/strict';
import type { Batch } from '../../shared/contract/batch.js';
import { quantize } from '../../shared/contract/codec.js';
import { CLOCKS, FIXES, QUALITIES, SENSORS, sensorSpec, type Reading } from '../../shared/contract/reading.js';
import { Random } from '../../simulators/random.js';
import { reportReliability, SOAK, type FuzzFigures } from '../support/reliability.js';

/**
 * A small seeded fuzzing toolkit shared by every entry point's fuzz test.
 *
 * One seed per run: FUZZ_SEED replays a run (every failure message prints it); without it each
 * run draws a new one, so CI keeps exploring instead of re-running yesterday's cases. Each entry
 * point takes its own stream of that seed, so adding cases to one leaves the others' unchanged.
 * FUZZ_SCALE (and a reliability soak) multiply the case counts for long runs.
 */
export const FUZZ_SEED = seedFromEnv();
export const FUZZ_SCALE = (Number(process.env.FUZZ_SCALE ?? '1') || 1) * SOAK;

process.stdout.write(`# fuzz seed ${FUZZ_SEED} (replay with FUZZ_SEED=${FUZZ_SEED}), scale ${FUZZ_SCALE}\n`);

function seedFromEnv(): number {
  const given = process.env.FUZZ_SEED;
  if (given === undefined || given === '') return (Date.now() ^ (process.pid << 16)) >>> 0;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed)) throw new Error(`FUZZ_SEED must be an integer, got ${JSON.stringify(given)}`);
  return seed >>> 0;
}

/** The default case count of a fuzz loop, scaled for soak runs. */
export function cases(n: number): number {
  return Math.max(1, Math.round(n * FUZZ_SCALE));
}

/** Bytes that mean something to some parser: ends of lines, delimiters, sign and length bits. */
const INTERESTING_BYTES = [0x00, 0x01, 0x0a, 0x0d, 0x20, 0x22, 0x24, 0x2a, 0x2c, 0x3e, 0x7b, 0x7d, 0x7f, 0x80, 0xfb, 0xfe, 0xff];
/** Multi-byte values at the edges of 8/16/32/53-bit and varint ranges. */
const INTERESTING_RUNS: readonly Buffer[] = [
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0x80, 0x00],
  [0x00, 0x00, 0x00, 0x00],
  [0xef, 0xbb, 0xbf],
  [0xc3, 0x28],
  [0xed, 0xa0, 0x80],
].map((b) => Buffer.from(b));

/** JSON values that break naive code: wrong types, edges of number ranges, prototype keys' values. */
export const INTERESTING_JSON: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1,
  0.5,
  -0.5,
  255,
  256,
  65535,
  65536,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53),
  1e21,
  1e308,
  -1e308,
  5e-324,
  '',
  ' ',
  '0',
  '1',
  '-1',
  '1e400',
  'NaN',
  'Infinity',
  'true',
  'null',
  'x'.repeat(300),
  '\u0000',
  '\ud800',
  '\u202e',
  '../../etc/passwd',
  '%s%n',
  [],
  [null],
  [1, 'a', {}],
  {},
  { a: { b: { c: [] } } },
];
/** Keys that collide with Object.prototype or are otherwise special to JavaScript objects. */
export const INTERESTING_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  '',
  ' ',
  '0',
  'a.b',
  'x[0]',
  '\u0000',
];
/** JSON text tokens that a structure-aware mutation of values cannot produce (JSON.stringify drops them). */
const JSON_TOKENS = [
  '1e400',
  '-1e400',
  '-',
  '"',
  '\\',
  '\\u0000',
  '\\ud800',
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  'null',
  '0x10',
  'NaN',
  '//',
  '/*',
  '\ufeff',
];

/** Mutations of a buffer, drawing every choice from one seeded stream. */
export class Mutator {
  constructor(readonly rnd: Random) {}

  chance(p: number): boolean {
    return this.rnd.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.rnd.int(0, xs.length - 1)]!;
  }

  /** Random bytes, each from the whole range or (biased) an interesting one. */
  garbage(maxLength: number): Buffer {
    const out = Buffer.alloc(this.rnd.int(0, maxLength));
    for (let i = 0; i < out.length; i++) out[i] = this.chance(0.2) ? this.pick(INTERESTING_BYTES) : this.rnd.int(0, 255);
    return out;
  }

  /**
   * 1 to `maxRounds` havoc steps on a copy of `input`: bit flips, interesting bytes and runs,
   * deletions, duplications, insertions of garbage or of dictionary tokens, truncation, and
   * splicing with a piece of another input of the same kind.
   */
  mutate(input: Buffer, opts: { dictionary?: readonly string[]; splice?: readonly Buffer[]; maxRounds?: number } = {}): Buffer {
    let b: Buffer = Buffer.from(input);
    const rounds = this.rnd.int(1, opts.maxRounds ?? 4);
    for (let r = 0; r < rounds; r++) b = this.step(b, opts.dictionary, opts.splice);
    return b;
  }

  /** A text mutation: latin1 keeps each byte one character, so any byte can appear. */
  mutateText(input: string, opts: { dictionary?: readonly string[]; splice?: readonly string[]; maxRounds?: number } = {}): string {
    const splice = opts.splice?.map((s) => Buffer.from(s, 'latin1'));
    return this.mutate(Buffer.from(input, 'latin1'), { ...opts, splice }).toString('latin1');
  }

  /** Positions at which to cut `length` bytes into pieces, as a serial line or a socket delivers them. */
  cuts(length: number, maxPieces = 8): number[] {
    const n = this.rnd.int(0, Math.min(maxPieces - 1, length));
    return [...new Set(Array.from({ length: n }, () => this.rnd.int(1, Math.max(1, length - 1))))].sort((a, b) => a - b);
  }

  /** `data` cut at random points. */
  chunks(data: Buffer, maxPieces = 8): Buffer[] {
    const at = [0, ...this.cuts(data.length, maxPieces), data.length];
    return at
      .slice(1)
      .map((end, i) => data.subarray(at[i], end))
      .filter((c) => c.length > 0);
  }

  /**
   * A structure-aware mutation of a JSON document: at a random place, replace a value with an
   * interesting one or a mutated sibling, delete or add a key (prototype names included), nest
   * garbage, or duplicate and drop array elements. Returns a new document.
   */
  mutateJson(doc: unknown, maxRounds = 3): unknown {
    let out = structuredClone(doc);
    for (let r = this.rnd.int(1, maxRounds); r > 0; r--) out = this.jsonStep(out);
    return out;
  }

  /** A mutated document as text, sometimes also mutated as bytes (invalid JSON, bad UTF-8). */
  mutateJsonText(doc: unknown): Buffer {
    const text = Buffer.from(JSON.stringify(this.mutateJson(doc)) ?? 'null');
    return this.chance(0.15) ? this.mutate(text, { dictionary: JSON_TOKENS, maxRounds: 2 }) : text;
  }

  private jsonStep(doc: unknown): unknown {
    const path = this.randomPath(doc);
    const replace = (value: unknown) => setAt(doc, path, value);
    const here = getAt(doc, path);
    const op = this.rnd.int(0, 6);
    if (op === 0) return replace(this.interesting());
    if (op === 1) return replace(typeof here === 'number' ? this.mutateNumber(here) : this.interesting());
    if (op === 2 && typeof here === 'string') return replace(this.mutateText(here, { maxRounds: 2 }));
    if (op === 3 && isObject(here)) {
      const keys = Object.keys(here);
      if (keys.length > 0 && this.chance(0.5)) delete here[this.pick(keys)];
      else
        here[this.chance(0.5) ? this.pick(INTERESTING_KEYS) : this.pick(keys.length > 0 ? keys : INTERESTING_KEYS) + 'x'] =
          this.interesting();
      return doc;
    }
    if (op === 4 && Array.isArray(here) && here.length > 0) {
      const items: unknown[] = here;
      const i = this.rnd.int(0, items.length - 1);
      if (this.chance(0.5)) items.splice(i, 1);
      else items.splice(i, 0, ...Array.from({ length: this.rnd.int(1, 3) }, () => structuredClone(items[i])));
      return doc;
    }
    if (op === 5) return replace(this.nest(here, this.rnd.int(1, 50)));
    return replace(this.interesting());
  }

  /** A copy, so that later steps mutating it leave the table (and other documents) alone. */
  interesting(): unknown {
    return structuredClone(this.pick(INTERESTING_JSON));
  }

  /** Near misses first (off by one, sign, scale), since validators check ranges. */
  mutateNumber(n: number): number {
    return this.pick([
      n + 1,
      n - 1,
      -n,
      n * 10,
      n / 10,
      n * 1e6,
      Math.trunc(n) + 0.5,
      n + 2 ** 53,
      Number.MAX_SAFE_INTEGER,
      Number.MIN_VALUE,
    ]);
  }

  private nest(value: unknown, depth: number): unknown {
    let v = value;
    for (let i = 0; i < depth; i++) v = this.chance(0.5) ? [v] : { [this.pick(INTERESTING_KEYS)]: v };
    return v;
  }

  /** A path to a random node, walking down with some chance of stopping at each level. */
  private randomPath(doc: unknown): (string | number)[] {
    const path: (string | number)[] = [];
    let at = doc;
    // Mostly below the root: replacing or extending the whole document is one case of many.
    while (this.chance(path.length === 0 ? 0.9 : 0.75)) {
      if (Array.isArray(at) && at.length > 0) {
        const i = this.rnd.int(0, at.length - 1);
        path.push(i);
        at = at[i];
      } else if (isObject(at) && Object.keys(at).length > 0) {
        const k = this.pick(Object.keys(at));
        path.push(k);
        at = at[k];
      } else break;
    }
    return path;
  }

  private step(b: Buffer, dictionary?: readonly string[], splice?: readonly Buffer[]): Buffer {
    const at = () => this.rnd.int(0, Math.max(0, b.length - 1));
    const insert = (piece: Buffer) => {
      const i = this.rnd.int(0, b.length);
      return Buffer.concat([b.subarray(0, i), piece, b.subarray(i)]);
    };
    switch (this.rnd.int(0, 9)) {
      case 0:
        if (b.length > 0) b[at()]! ^= 1 << this.rnd.int(0, 7);
        return b;
      case 1:
        if (b.length > 0) b[at()] = this.pick(INTERESTING_BYTES);
        return b;
      case 2:
        if (b.length > 0) b[at()] = this.rnd.int(0, 255);
        return b;
      case 3: {
        const i = at();
        return Buffer.concat([b.subarray(0, i), b.subarray(i + this.rnd.int(1, 16))]);
      }
      case 4: {
        const i = at();
        return insert(Buffer.from(b.subarray(i, i + this.rnd.int(1, 32))));
      }
      case 5:
        return b.subarray(0, this.rnd.int(0, b.length));
      case 6:
        return insert(this.garbage(16));
      case 7:
        return insert(
          dictionary && dictionary.length > 0 && this.chance(0.7)
            ? Buffer.from(this.pick(dictionary), 'latin1')
            : this.pick(INTERESTING_RUNS),
        );
      case 8: {
        if (!splice || splice.length === 0) return insert(this.pick(INTERESTING_RUNS));
        const other = this.pick(splice);
        const from = this.rnd.int(0, other.length);
        const piece = other.subarray(from, from + this.rnd.int(1, other.length));
        return this.chance(0.5) ? insert(piece) : Buffer.concat([b.subarray(0, at()), piece]);
      }
      default: {
        // Overwrite with a run, keeping the length: a field replaced rather than moved.
        const run = this.pick(INTERESTING_RUNS);
        const i = at();
        run.copy(b, i, 0, Math.min(run.length, b.length - i));
        return b;
      }
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getAt(doc: unknown, path: readonly (string | number)[]): unknown {
  return path.reduce<unknown>((at, k) => (at as Record<string | number, unknown>)[k], doc);
}

function setAt(doc: unknown, path: readonly (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const parent = getAt(doc, path.slice(0, -1)) as Record<string | number, unknown>;
  parent[path.at(-1)!] = value;
  return doc;
}

/** How many examples of each failure a report keeps: enough to replay, not a log flood. */
const EXAMPLES = 5;

/**
 * Counts one entry point's cases: each is accepted, refused with a reason, or a crash (an
 * exception the entry point should never throw, a hang, a broken invariant, or a refusal
 * without a reason). `finish` reports the figures and fails the test on any crash, printing
 * the seed and the first inputs that crashed.
 */
export class FuzzTally {
  cases = 0;
  accepted = 0;
  rejected = 0;
  crashes = 0;
  readonly reasons: Record<string, number> = {};
  private readonly examples: string[] = [];
  private readonly started = performance.now();

  constructor(readonly entryPoint: string) {}

  accept(): void {
    this.cases++;
    this.accepted++;
  }

  /** A refusal; `reason` is the category counted, and an empty one is itself a crash. */
  reject(reason: string | undefined, input: unknown): void {
    if (typeof reason !== 'string' || reason.trim() === '') return this.crash(input, new Error('refused without a reason'));
    this.cases++;
    this.rejected++;
    this.reasons[reason] = (this.reasons[reason] ?? 0) + 1;
  }

  crash(input: unknown, err: unknown): void {
    this.cases++;
    this.crashes++;
    if (this.examples.length < EXAMPLES) {
      const what = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      this.examples.push(`${what}\n    input: ${describeInput(input)}`);
    }
  }

  /** Runs one case: `run` returns a reason for a refusal or undefined for an acceptance; a throw is a crash. */
  check(input: unknown, run: () => string | undefined): void {
    let reason: string | undefined;
    try {
      reason = run();
    } catch (err) {
      return this.crash(input, err);
    }
    this.settle(input, reason);
  }

  /** `check` for a case that has to wait (a network round trip, a serial line). */
  async checkAsync(input: unknown, run: () => Promise<string | undefined>): Promise<void> {
    let reason: string | undefined;
    try {
      reason = await run();
    } catch (err) {
      return this.crash(input, err);
    }
    this.settle(input, reason);
  }

  private settle(input: unknown, reason: string | undefined): void {
    if (reason === undefined) this.accept();
    else this.reject(reason, input);
  }

  /** Reports the figures once, then asserts no crash (with replay instructions) and some of each outcome. */
  finish(opts: { minCases?: number } = {}): FuzzFigures {
    const figures: FuzzFigures = {
      kind: 'fuzz',
      entryPoint: this.entryPoint,
      cases: this.cases,
      crashes: this.crashes,
      rejected: this.rejected,
      reasons: Object.fromEntries(Object.entries(this.reasons).sort(([, a], [, b]) => b - a)),
      durationS: Math.round((performance.now() - this.started) / 100) / 10,
    };
    reportReliability(figures);
    assert.equal(
      this.crashes,
      0,
      `${this.entryPoint}: ${this.crashes} crash(es) in ${this.cases} cases; replay with FUZZ_SEED=${FUZZ_SEED}\n  ${this.examples.join('\n  ')}`,
    );
    assert.ok(this.cases >= (opts.minCases ?? 1), `${this.entryPoint}: only ${this.cases} cases ran`);
    return figures;
  }
}

function describeInput(input: unknown): string {
  if (Buffer.isBuffer(input)) return `${input.length} bytes ${input.subarray(0, 200).toString('hex')}${input.length > 200 ? '…' : ''}`;
  const text = typeof input === 'string' ? input : (JSON.stringify(input) ?? String(input));
  return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…` : text);
}

/**
 * A refusal message reduced to its category for the reasons table: the part before the first
 * `: ` (the field, in this project's messages), with indices and numbers folded, so
 * `readings[3].value: …` and `readings[7].value: …` count as one reason.
 */
export function reasonOf(message: string): string {
  const first = message.split('\n')[0]!.trim().replace(/\d+/g, 'N');
  const colon = first.indexOf(': ');
  if (colon < 0) return first.slice(0, 80);
  const head = first.slice(0, colon);
  // A bare field path says where, not what: keep the start of what is wrong with it.
  const what = /\s/.test(head)
    ? ''
    : first
        .slice(colon + 2)
        .split(/,| got |\[/)[0]!
        .trim()
        .slice(0, 40);
  return what ? `${head}: ${what}` : head.slice(0, 80);
}

/** An entry point's own seeded stream. */
export function fuzzRandom(entryPoint: string): Random {
  let h = 0;
  for (let i = 0; i < entryPoint.length; i++) h = (Math.imul(h, 31) + entryPoint.charCodeAt(i)) >>> 0;
  return Random.stream(FUZZ_SEED, h);
}

/**
 * A valid telemetry batch to mutate: 1 to `maxReadings` readings of every sensor, seq gaps
 * (evictions), ts deltas both ways, every quality and clock, positions anywhere on Earth.
 */
export function seedBatch(rnd: Random, vehicle: string, now: number, maxReadings = 12): Batch {
  const readings: Reading[] = [];
  let seq = rnd.int(1, 2 ** 40);
  let ts = now - rnd.int(0, 3_600_000);
  for (let i = rnd.int(1, maxReadings); i > 0; i--) {
    const sensor = SENSORS[rnd.int(0, SENSORS.length - 1)]!;
    const [lo, hi] = sensorSpec(sensor).range;
    const r: Reading = {
      vehicle,
      seq,
      ts,
      clock: CLOCKS[rnd.int(0, CLOCKS.length - 1)]!,
      sensor,
      value: quantize(rnd.uniform(lo, hi)),
      quality: QUALITIES[rnd.int(0, QUALITIES.length - 1)]!,
    };
    if (sensor === 'gps') {
      r.position = {
        lat: Math.round(rnd.uniform(-90, 90) * 1e7) / 1e7,
        lon: Math.round(rnd.uniform(-180, 180) * 1e7) / 1e7,
        heading: rnd.int(0, 3599) / 10,
        fix: FIXES[rnd.int(0, FIXES.length - 1)]!,
      };
    }
    readings.push(r);
    seq += rnd.next() < 0.8 ? 1 : rnd.int(2, 1000);
    ts += rnd.int(-500, 2000);
  }
  return { vehicle, headTs: Math.max(...readings.map((r) => r.ts)), readings };
}
