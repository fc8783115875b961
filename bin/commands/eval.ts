import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { z } from 'zod';
import { FULL, QUICK, runEval, SEED_SETS } from '../../cloud/eval/eval.js';
import { missedFloors, reportLines } from '../../cloud/eval/report.js';
import { bool, ConfigError, int, parseFile } from '../../shared/config.js';
import { DEFAULT_RULES } from '../../shared/rules/default-rules.js';
import { ruleSetSchema } from '../../shared/rules/rule-set.js';
import { flagsFrom, runCommand, withFlags } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

const BEGIN = '<!-- eval:begin -->';
const END = '<!-- eval:end -->';

export const evalConfigSchema = z
  .object({
    quick: bool()
      .default(false)
      .describe(`a smaller sample (${QUICK.faultFree} fault-free days and ${QUICK.perFault} per fault, per seed set) that runs in minutes`),
    rules: z.string().optional().meta({ description: 'rules file (JSON) to score', arg: 'file', defaultText: 'built-in rules' }),
    set: z
      .enum([...SEED_SETS, 'both'])
      .default('both')
      .describe('which seed set: tuning, held-out, or both'),
    workers: int().min(1).max(64).optional().meta({ description: 'worker threads', defaultText: 'one per core' }),
    json: bool().default(false).describe('print the figures as JSON instead of tables'),
    write: z
      .string()
      .optional()
      .meta({ description: `also put the tables in this markdown file, between ${BEGIN} and ${END}`, arg: 'file' }),
    check: bool().default(false).describe('exit 1 when the held-out set misses a floor'),
  })
  .strict();

export function evalCommand(): Command {
  const cmd = describedCommand('eval');
  return withFlags(cmd, evalConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const s = flagsFrom(evalConfigSchema, flags);
      const rules = s.rules ? parseFile(ruleSetSchema, s.rules) : DEFAULT_RULES;
      const sets = s.set === 'both' ? SEED_SETS : [s.set];
      const started = Date.now();
      const results = await runEval({
        rules,
        size: s.quick ? QUICK : FULL,
        sets,
        workers: s.workers,
        onProgress: (done, total) => {
          // A terminal gets a line that updates in place; a log gets a line every tenth.
          if (process.stderr.isTTY) process.stderr.write(`\rscored ${done}/${total} truck-days`);
          else if (done % Math.ceil(total / 10) === 0) process.stderr.write(`scored ${done}/${total} truck-days\n`);
        },
      });
      process.stderr.write(
        `${process.stderr.isTTY ? '\r' : ''}scored ${results.reduce((n, r) => n + r.days, 0)} truck-days in ${Math.round((Date.now() - started) / 1000)} s\n`,
      );
      const lines = [...reportLines(results)];
      if (s.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else for (const line of lines) process.stdout.write(`${line}\n`);
      if (s.write) writeTables(s.write, lines, s.quick);
      const heldOut = results.find((r) => r.set === 'held-out');
      const missed = heldOut ? missedFloors(heldOut) : [];
      if (missed.length > 0) process.stderr.write(`held-out floors missed: ${missed.join('; ')}\n`);
      if (s.check && missed.length > 0) process.exitCode = 1;
    }),
  );
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
