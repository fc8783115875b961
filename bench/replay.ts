/**
 * `fleet replay` on a 1,000,000-row recording (one truck's engine temperature at 1 Hz, eleven
 * and a half days, the example rules), in each output format, as a user runs it: a child
 * process writing to a file. Figures: its peak RSS (getrusage's, reported by the child as it
 * exits, so no sampling misses a peak) and rows/s from spawn to exit.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { FLEET_BIN, tempDir } from '../test/support/harness.js';
import { projectPath } from '../shared/package-root.js';
import { emit, round, runPart } from './support.js';

const USAGE = `Usage: node dist/bench/replay.js [--quick] [--help]

Peak RSS and rows/s of \`fleet replay\` on a 1,000,000-row CSV (--quick: 200,000 rows), for
--scores with --format json and table, and for the alerts alone. One JSON line per figure.
`;

const START = Date.UTC(2024, 0, 1);

/** timestamp,value at 1 Hz: an engine warming and cooling through the day, with a little noise. */
function writeCsv(path: string, rows: number): void {
  const fd = openSync(path, 'w');
  let chunk = 'timestamp,value\n';
  for (let i = 0; i < rows; i++) {
    chunk += `${START + i * 1000},${(90 + 5 * Math.sin(i / 600) + (i % 97) / 50).toFixed(2)}\n`;
    if (chunk.length > 1 << 20) {
      writeSync(fd, chunk);
      chunk = '';
    }
  }
  writeSync(fd, chunk);
  closeSync(fd);
}

/** Loaded into the child with --import (and so into its worker threads, which stay quiet): its peak RSS (KiB) on fd 3 as it exits. */
const PEAK_RSS = `data:text/javascript,import { writeSync } from 'node:fs'; import { isMainThread } from 'node:worker_threads'; if (isMainThread) process.on('exit', () => writeSync(3, String(process.resourceUsage().maxRSS)));`;

async function run(args: string[], out: string): Promise<{ peakMb: number; seconds: number; lines: number }> {
  const fd = openSync(out, 'w');
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', PEAK_RSS, FLEET_BIN, 'replay', ...args], { stdio: ['ignore', fd, 'inherit', 'pipe'] });
  let peak = '';
  child.stdio[3]!.on('data', (d: Buffer) => (peak += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  closeSync(fd);
  if (code !== 0) throw new Error(`fleet replay ${args.join(' ')} exited with ${code}`);
  const text = readFileSync(out, 'utf8');
  let lines = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lines++;
  return { peakMb: round(Number(peak) / 1024, 1), seconds, lines };
}

runPart(
  'replay',
  USAGE,
  (quick) => (quick ? 60_000 : 300_000),
  async (o, log) => {
    const rows = o.quick ? 200_000 : 1_000_000;
    const dir = tempDir('fleet-bench-replay-');
    const csv = join(dir, 'engine.csv');
    writeCsv(csv, rows);
    const rules = projectPath('cloud', 'replay', 'examples', 'rules.json');
    const cases: [string, string[]][] = [
      ['--scores --format json', ['--scores', '--format', 'json']],
      ['--scores --format table', ['--scores', '--format', 'table']],
      ['--format json (alerts only)', ['--format', 'json']],
      ['--format table (alerts only)', ['--format', 'table']],
    ];
    for (const [name, args] of cases) {
      const r = await run(['--rules', rules, '--csv', csv, ...args], join(dir, 'out'));
      const rate = rows / r.seconds;
      log(`${name}: ${Math.round(rate).toLocaleString('en')} rows/s, peak RSS ${r.peakMb} MB, ${r.lines.toLocaleString('en')} lines out`);
      const note = `${rows.toLocaleString('en')} rows (1 Hz, one truck), example rules, output to a file`;
      emit('replay', { figure: `${name}: peak RSS`, value: r.peakMb, unit: 'MB', floor: 100, floorOp: '<=', note });
      emit('replay', {
        figure: `${name}: rows/s`,
        value: Math.round(rate),
        unit: 'rows/s',
        floor: 300_000,
        note: `${note}; spawn to exit`,
      });
    }
  },
);
