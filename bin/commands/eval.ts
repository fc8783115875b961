import { readFileSync, writeFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { FULL, QUICK, runEval, SEED_SETS, type SeedSet } from '../../cloud/eval/eval.js';
import { missedFloors, reportLines } from '../../cloud/eval/report.js';
import { ConfigError, int, parseFile } from '../../shared/config.js';
import { DEFAULT_RULES } from '../../shared/rules/default-rules.js';
import { ruleSetSchema } from '../../shared/rules/rule-set.js';
import { runCommand } from '../cli-support.js';

const BEGIN = '<!-- eval:begin -->';
const END = '<!-- eval:end -->';

export function evalCommand(): Command {
  return new Command('eval')
    .description('score the detector on simulated, labelled truck-days: recall and time to detect per fault, false alerts per truck-day')
    .option('--quick', `a smaller sample (${QUICK.faultFree} fault-free days and ${QUICK.perFault} per fault, per seed set) that runs in minutes`)
    .option('--rules <file>', 'rules file (JSON) to score instead of the default rules')
    .addOption(new Option('--set <set>', 'which seed set: tuning, held-out, or both').choices([...SEED_SETS, 'both']).default('both'))
    .option('--workers <n>', 'worker threads (default: one per core)')
    .option('--json', 'print the figures as JSON instead of tables')
    .option('--write <file>', `also put the tables in this markdown file, between ${BEGIN} and ${END}`)
    .option('--check', 'exit 1 when the held-out set misses a floor')
    .action((flags: { quick?: boolean; rules?: string; set: SeedSet | 'both'; workers?: string; json?: boolean; write?: string; check?: boolean }) =>
      runCommand(async () => {
        const rules = flags.rules ? parseFile(ruleSetSchema, flags.rules) : DEFAULT_RULES;
        const workers = flags.workers === undefined ? undefined : workerCount(flags.workers);
        const sets = flags.set === 'both' ? SEED_SETS : [flags.set];
        const started = Date.now();
        const results = await runEval({
          rules,
          size: flags.quick ? QUICK : FULL,
          sets,
          workers,
          onProgress: (done, total) => {
            // A terminal gets a line that updates in place; a log gets a line every tenth.
            if (process.stderr.isTTY) process.stderr.write(`\rscored ${done}/${total} truck-days`);
            else if (done % Math.ceil(total / 10) === 0) process.stderr.write(`scored ${done}/${total} truck-days\n`);
          },
        });
        process.stderr.write(`${process.stderr.isTTY ? '\r' : ''}scored ${results.reduce((n, s) => n + s.days, 0)} truck-days in ${Math.round((Date.now() - started) / 1000)} s\n`);
        const lines = [...reportLines(results)];
        if (flags.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
        else for (const line of lines) process.stdout.write(`${line}\n`);
        if (flags.write) writeTables(flags.write, lines, flags.quick === true);
        const heldOut = results.find((s) => s.set === 'held-out');
        const missed = heldOut ? missedFloors(heldOut) : [];
        if (missed.length > 0) process.stderr.write(`held-out floors missed: ${missed.join('; ')}\n`);
        if (flags.check && missed.length > 0) process.exitCode = 1;
      }),
    );
}

function workerCount(text: string): number {
  const parsed = int().min(1).max(64).safeParse(text);
  if (!parsed.success) throw new ConfigError(`--workers: expected a whole number from 1 to 64, got "${text}"`);
  return parsed.data;
}

/** Replaces the generated part of a markdown file, keeping what people wrote around it. */
function writeTables(file: string, lines: string[], quick: boolean): void {
  let doc: string;
  try {
    doc = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`--write: cannot read ${file}: ${(err as Error).message}`);
  }
  const from = doc.indexOf(BEGIN);
  const to = doc.indexOf(END);
  if (from < 0 || to < from) throw new ConfigError(`--write: ${file} has no ${BEGIN} … ${END} section to fill`);
  const made = `Made by \`fleet eval${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 10)}.`;
  writeFileSync(file, `${doc.slice(0, from + BEGIN.length)}\n${made}\n\n${lines.join('\n')}\n${doc.slice(to)}`);
}
