/**
 * `npm run bench`: every benchmark part, one after the other, each in a process of its own
 * (so one part's heap, threads and children never weigh on the next), then the table in
 * BENCHMARKS.md rewritten from the figures. stdout: the figure lines of every part; stderr:
 * the parts' progress.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { benchScript, emit, machine, progress, round, spawnNode, type Figure, type PartName } from './support.js';
import { projectPath } from '../shared/package-root.js';

const USAGE = `Usage: npm run bench -- [--quick] [--only PARTS] [--help]
       node dist/bench/run.js [options]

Runs the benchmark parts and rewrites the table in BENCHMARKS.md. Progress on stderr, one
JSON line per figure on stdout: {part, figure, value, unit, floor?, floorOp?, met?, peer?,
peerValue?, ratio?, note?}.

Parts (each also runs alone: node dist/bench/MODULE.js [--quick] [--help]):
  wire          bytes per reading on the MQTT link (bench/wire.ts)
  detector      rule engine readings/s per core, memory per vehicle, readings/s stored into
                PostgreSQL beside SQLite (bench/detector.ts)
  archiver      fleet archiver readings/s from the embedded log to Parquet files, bytes per
                reading (bench/archiver.ts)
  agent         fleet agent as the Pi starts it: RSS and first sample, steady and on a 1,000,000-
                reading backlog; readings/s on one core, drain (bench/agent.ts)
  gateway       QoS 1 messages/s, PUBACK latency and CPU per message beside Mosquitto, one
                and two workers (bench/gateway.ts)
  e2e           alert latency window close to cab over Kafka at 1,000 vehicles and the largest
                fleet within 1 s, agents per process (bench/end-to-end.ts)
  kafka-client  kafkajs beside @platformatic/kafka (bench/kafka-client.ts)
  kafka-failover  PUBACK stall when a broker of three is SIGKILLed (bench/kafka-failover.ts)
  postgres-client  pg beside postgres (porsager) on the detector's write path (bench/postgres-client.ts)
  archive-query  a month of a fleet in Parquet: bytes per reading, query times (bench/archive-query.ts)
  console       the console's page in Chromium, 500 and 5,000 vehicles: update and input to
                paint (bench/console.ts)
  replay        fleet replay on 1,000,000 rows: peak RSS and rows/s per output format (bench/replay.ts)

Options:
  --quick        shorter measurements (the whole run under 3 minutes)
  --only LIST    comma-separated parts to run (default: all)
  --help         this text
`;

interface Part {
  name: PartName;
  module: string;
  /** Emits figures from the module's output lines, for a module with its own format. */
  figures?: (lines: Record<string, unknown>[]) => Figure[];
}

const PARTS: Part[] = [
  { name: 'wire', module: 'wire' },
  { name: 'detector', module: 'detector' },
  { name: 'archiver', module: 'archiver' },
  { name: 'agent', module: 'agent' },
  { name: 'gateway', module: 'gateway' },
  { name: 'e2e', module: 'end-to-end' },
  { name: 'kafka-client', module: 'kafka-client', figures: kafkaClientFigures },
  { name: 'kafka-failover', module: 'kafka-failover' },
  { name: 'postgres-client', module: 'postgres-client' },
  { name: 'archive-query', module: 'archive-query' },
  { name: 'console', module: 'console' },
  { name: 'replay', module: 'replay' },
];

const BENCHMARKS_MD = projectPath('BENCHMARKS.md');
const BEGIN = '<!-- bench:begin (rewritten by npm run bench) -->';
const END = '<!-- bench:end -->';

/** bench/kafka-client.ts prints one line per client and operation: the client in use against the alternative. */
function kafkaClientFigures(lines: Record<string, unknown>[]): Figure[] {
  const rate = (client: string, op: string) => Number(lines.find((l) => l.client === client && l.op === op)?.recordsPerSec);
  const version = (client: string) => {
    const v = lines.find((l) => l.client === client)?.version;
    return typeof v === 'string' ? v : '';
  };
  return ['produce', 'consume'].map((op) =>
    emit('kafka-client', {
      figure: `${op} records/s, kafkajs ${version('kafkajs')} (in use)`,
      value: rate('kafkajs', op),
      unit: 'records/s',
      peer: `@platformatic/kafka ${version('platformatic')}`,
      peerValue: rate('platformatic', op),
      note:
        op === 'produce'
          ? 'acks=all, idempotent, 500 records per send; a record is one batch of 50 readings'
          : 'consumer group from the beginning, manual commits',
    }),
  );
}

async function runPart(part: Part, quick: boolean): Promise<Figure[]> {
  const child = spawnNode(benchScript(part.module), quick ? ['--quick'] : []);
  const code = await child.exited;
  if (code !== 0) throw new Error(`${part.module} exited with ${code}`);
  if (part.figures) return part.figures(child.lines);
  for (const l of child.lines) process.stdout.write(`${JSON.stringify(l)}\n`);
  return child.lines as unknown as Figure[];
}

const fmt = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '' : v.toLocaleString('en', { maximumFractionDigits: 2 }));

function table(figures: Figure[], failed: string[], command: string, seconds: number, load: [number, number]): string {
  const m = machine();
  const rows = figures.map((f) =>
    [
      f.part,
      f.figure,
      `${fmt(f.value)} ${f.unit}`,
      f.floor === undefined ? '' : `${f.floorOp === '<=' ? '≤' : '≥'} ${fmt(f.floor)}`,
      f.met === undefined ? '' : f.met ? 'met' : '**missed**',
      f.peer === undefined ? '' : `${f.peer}: ${fmt(f.peerValue)}`,
      fmt(f.ratio),
      f.note ?? '',
    ].join(' | '),
  );
  return [
    BEGIN,
    `- **Machine**: ${m.cpu}, ${m.cores} cores, ${m.ramGb} GiB RAM; Node ${m.node}`,
    `- **Date**: ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}; 1-minute load ${round(load[0], 2)} before, ${round(load[1], 2)} after`,
    `- **Command**: \`${command}\` (${round(seconds)} s)`,
    ...(failed.length > 0 ? [`- **Failed parts**: ${failed.join(', ')}`] : []),
    '',
    '| part | figure | value | floor | | peer | ratio | conditions |',
    '| --- | --- | ---: | ---: | --- | --- | ---: | --- |',
    ...rows.map((r) => `| ${r} |`),
    END,
  ].join('\n');
}

function rewriteBenchmarksMd(block: string): void {
  let doc: string;
  try {
    doc = readFileSync(BENCHMARKS_MD, 'utf8');
  } catch {
    doc = `# Benchmarks\n\n${BEGIN}\n${END}\n`;
  }
  const from = doc.indexOf(BEGIN);
  const to = doc.indexOf(END);
  doc = from >= 0 && to > from ? doc.slice(0, from) + block + doc.slice(to + END.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(BENCHMARKS_MD, doc);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  let values: { quick?: boolean; only?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { quick: { type: 'boolean' }, only: { type: 'string' }, help: { type: 'boolean' } },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const only = values.only?.split(',').map((s) => s.trim());
  const unknown = only?.filter((n) => !PARTS.some((p) => p.name === n)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`--only: unknown part ${unknown.join(', ')}; parts are ${PARTS.map((p) => p.name).join(', ')}\n`);
    return 2;
  }
  const log = progress('bench');
  const started = Date.now();
  const loadBefore = loadavg()[0]!;
  const figures: Figure[] = [];
  const failed: string[] = [];
  for (const part of PARTS.filter((p) => !only || only.includes(p.name))) {
    log(`${part.name}: starting`);
    try {
      figures.push(...(await runPart(part, values.quick === true)));
    } catch (err) {
      failed.push(part.name);
      log(`${part.name}: FAILED: ${(err as Error).message}`);
    }
  }
  const seconds = (Date.now() - started) / 1000;
  const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
  rewriteBenchmarksMd(table(figures, failed, command, seconds, [loadBefore, loadavg()[0]!]));
  const missed = figures.filter((f) => f.met === false).map((f) => `${f.part}: ${f.figure}`);
  log(
    `${figures.length} figures in ${round(seconds)} s, BENCHMARKS.md rewritten; floors missed: ${missed.length === 0 ? 'none' : missed.join('; ')}`,
  );
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? String(err)}\n`);
    process.exit(1);
  },
);
