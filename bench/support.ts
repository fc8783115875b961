/**
 * What every benchmark part shares: the figure line format, progress on stderr, percentiles,
 * child processes (pinned to a core where `taskset` exists), option parsing and the part's
 * main loop with its deadline. stdout carries only JSON figure lines, so a part's output can
 * be piped or collected by bench/run.ts unchanged.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Reading } from '../shared/contract/reading.js';
import { simulateSamples } from '../simulators/fast-forward.js';
import { TruckModel } from '../simulators/truck-model.js';
import { FLEET_BIN, freePort, portOpen, tempDir, waitFor } from '../test/support/harness.js';

export type PartName =
  | 'agent'
  | 'gateway'
  | 'detector'
  | 'archiver'
  | 'e2e'
  | 'wire'
  | 'kafka-client'
  | 'kafka-failover'
  | 'postgres-client'
  | 'archive-query'
  | 'console'
  | 'replay';

/** One measured figure: one JSON line on stdout. */
export interface Figure {
  part: PartName;
  figure: string;
  value: number;
  unit: string;
  /** The floor for this figure, and which side of it is good. */
  floor?: number;
  floorOp?: '>=' | '<=';
  met?: boolean;
  /** What the same figure is for a peer measured in the same run, and value / peerValue. */
  peer?: string;
  peerValue?: number;
  ratio?: number;
  /** The conditions the figure was taken under (sizes, settings), short. */
  note?: string;
}

export type FigureInput = Omit<Figure, 'part' | 'met' | 'ratio'>;

export const round = (v: number, digits = 0) => Number(v.toFixed(digits));

/** Prints a figure line; `met` and `ratio` are derived here so no part computes them differently. */
export function emit(part: PartName, f: FigureInput): Figure {
  const fig: Figure = { part, ...f };
  if (f.floor !== undefined) fig.met = (f.floorOp ?? '>=') === '>=' ? f.value >= f.floor : f.value <= f.floor;
  if (f.peerValue !== undefined && f.peerValue !== 0) fig.ratio = round(f.value / f.peerValue, 2);
  process.stdout.write(`${JSON.stringify(fig)}\n`);
  return fig;
}

export function progress(part: string): (msg: string) => void {
  const t0 = Date.now();
  return (msg) => process.stderr.write(`[${part} ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${msg}\n`);
}

/** q in [0, 1] of an ascending array (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const MB = 1024 * 1024;

export function machine(): { cpu: string; cores: number; ramGb: number; node: string } {
  return { cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: cpus().length, ramGb: round(totalmem() / 2 ** 30, 1), node: process.version };
}

/**
 * A simulated truck's readings at 10 readings/s (every sensor at 2 Hz) from `startTs`: the
 * workload of every part that sends telemetry.
 */
export function truckReadings(vehicle: string, count: number, startTs: number, seed = 7): Reading[] {
  const model = new TruckModel({ seed, startTs: startTs - 15 * 60_000 });
  const rates = { engine_temp: 2, container_temp: 2, speed: 2, gps: 2, rpm: 2 };
  const out: Reading[] = [];
  let seq = 1;
  for (const s of simulateSamples(model, startTs, Number.MAX_SAFE_INTEGER, rates)) {
    out.push({ ...s, vehicle, seq: seq++ });
    if (out.length === count) break;
  }
  return out;
}

const HAS_TASKSET = spawnSync('taskset', ['-c', '0', 'true']).status === 0;

/** Pins this process, all its threads, to `core` (a load generator kept off the broker's core). */
export function pinSelf(core: number): void {
  if (HAS_TASKSET) spawnSync('taskset', ['-a', '-pc', String(core), String(process.pid)], { stdio: 'ignore' });
}

/**
 * CPU time (user + system, ms) used so far by process `pid` and its children that still run:
 * a broker's cost per message whatever else shares the machine.
 */
export function cpuMs(pid: number): number {
  const own = (p: number) => {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
    } catch {
      return 0;
    }
  };
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // No such file where the kernel lacks CONFIG_PROC_CHILDREN: the process alone.
  }
  return own(pid) + children.reduce((sum, c) => sum + own(c), 0);
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** A compiled bench module next to this one (dist/bench/NAME.js). */
export const benchScript = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

export interface NodeChild {
  child: ChildProcess;
  /** Parsed JSON lines of its stdout, in order. */
  lines: Record<string, unknown>[];
  /** Resolves with the next JSON line for which `match` holds (also one already received). */
  next(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/**
 * Runs `node SCRIPT ARGS`, pinned to `core` (or a taskset list of cores) when taskset exists, stderr passed through (its
 * progress), stdout read as JSON lines (its results). `spawnedAt` is the parent's clock when
 * the child was started, for "time since start" figures across processes.
 */
export function spawnNode(
  script: string,
  args: string[],
  opts: { core?: number | string; nodeArgs?: string[]; env?: NodeJS.ProcessEnv } = {},
): NodeChild & { spawnedAt: number } {
  const node = [...(opts.nodeArgs ?? []), script, ...args];
  const [cmd, argv] =
    opts.core !== undefined && HAS_TASKSET ? ['taskset', ['-c', String(opts.core), process.execPath, ...node]] : [process.execPath, node];
  const spawnedAt = Date.now();
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...opts.env } });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop()!;
    for (const p of parts) if (p.trim().startsWith('{')) lines.push(JSON.parse(p) as Record<string, unknown>);
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const next = (match: (line: Record<string, unknown>) => boolean, timeoutMs = 120_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = lines.find(match);
        if (found) return done(() => resolve(found));
        if (child.exitCode !== null || child.signalCode !== null)
          done(() => reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}) before the expected line`)));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${script}: no expected line within ${timeoutMs} ms`))), timeoutMs);
      const done = (then: () => void) => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', check);
        then();
      };
      waiters.add(check);
      child.on('exit', check);
      check();
    });
  // A part that fails must not leave its children running.
  process.on('exit', () => child.kill('SIGKILL'));
  return { child, lines, next, exited, spawnedAt };
}

export interface CommonOptions {
  quick: boolean;
  values: Record<string, string | boolean | undefined>;
}

/**
 * --quick and --help for every part, plus its own string options. Returns undefined after
 * printing the usage.
 */
export function partOptions(usage: string, extra: Record<string, { type: 'string' | 'boolean' }> = {}): CommonOptions | undefined {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, help: { type: 'boolean' }, ...extra }, strict: true });
  if (values.help) {
    process.stdout.write(usage);
    return undefined;
  }
  return { quick: values.quick === true, values: values };
}

/**
 * Runs a part with a deadline and exits with its outcome (explicitly: a client still
 * reconnecting after a failure must not keep the process alive).
 */
export function runPart(
  name: string,
  usage: string,
  budgetMs: (quick: boolean) => number,
  body: (o: CommonOptions, log: (msg: string) => void) => Promise<void>,
  extra?: Record<string, { type: 'string' | 'boolean' }>,
): void {
  const log = progress(name);
  let o: CommonOptions | undefined;
  try {
    o = partOptions(usage, extra);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (!o) process.exit(0);
  const opts = o;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not finish within ${budgetMs(opts.quick) / 1000} s`)), budgetMs(opts.quick));
  });
  Promise.race([body(opts, log), deadline]).then(
    () => {
      clearTimeout(timer);
      log('done');
      process.exit(0);
    },
    (err: Error) => {
      log(`failed: ${err.stack ?? String(err)}`);
      process.exit(1);
    },
  );
}

export interface GatewayProcess {
  port: number;
  /** The gateway's process (taskset execs node), the primary of its workers if it has some. */
  pid: number;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

/** `fleet gateway` as users run it, in a child process (pinned to `core`), logging warnings only. */
export async function startGatewayProcess(
  opts: {
    /** A core, or a taskset list of cores (workers of one gateway). */
    core?: number | string;
    sinks?: string;
    kafkaBrokers?: string;
    args?: string[];
    /** A port other gateway processes share (SO_REUSEPORT), and the Redis that links them. */
    cluster?: { port: number; redisUrl: string };
    /** `--workers`: gateway processes of this one gateway (needs `cluster`). */
    workers?: number;
  } = {},
): Promise<GatewayProcess> {
  const port = opts.cluster?.port ?? (await freePort());
  // A port another process already listens on says nothing of this one: then its ops port says when it is ready.
  const opsPort = opts.cluster ? await freePort() : -1;
  const dataDir = join(tempDir('fleet-bench-gateway-'), 'gateway');
  // Mosquitto has no per-client publish limit, and the bench's clients publish far faster than any truck: lift ours.
  const args = ['gateway', '--port', String(port), '--data-dir', dataDir, '--ops-port', String(opsPort), '--max-publishes-per-second', '0'];
  if (opts.sinks) args.push('--sinks', opts.sinks);
  if (opts.kafkaBrokers) args.push('--kafka-brokers', opts.kafkaBrokers);
  if (opts.cluster) args.push('--reuse-port', 'true', '--cluster-redis-url', opts.cluster.redisUrl);
  if (opts.workers) args.push('--workers', String(opts.workers));
  args.push(...(opts.args ?? []));
  const gw = spawnNode(FLEET_BIN, args, { core: opts.core, env: { FLEET_LOG_LEVEL: 'warn' } });
  // At warn level it says nothing when ready: ready is its port accepting connections.
  await waitFor(
    `the gateway on port ${port}`,
    () => {
      if (gw.child.exitCode !== null) throw new Error(`the gateway exited with ${gw.child.exitCode}`);
      if (opsPort < 0) return portOpen(port);
      // Workers come up after their primary's ops port: healthy is when all of them are.
      return fetch(`http://127.0.0.1:${opsPort}/healthz`).then(
        (res) => res.ok,
        () => false,
      );
    },
    60_000,
    100,
  );
  return {
    port,
    pid: gw.child.pid!,
    url: `mqtt://127.0.0.1:${port}`,
    dataDir,
    async stop() {
      gw.child.kill('SIGTERM');
      await gw.exited;
    },
  };
}
