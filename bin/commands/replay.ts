import { once } from 'node:events';
import type { Command } from 'commander';
import { z } from 'zod';
import { boundedReplay } from '../../cloud/replay/bounded-replay.js';
import { FORMATS } from '../../cloud/replay/format.js';
import { bool, int } from '../../shared/config.js';
import { SENSORS } from '../../shared/contract/reading.js';
import { flagsFrom, runCommand, withFlags } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export const replayConfigSchema = z
  .object({
    rules: z.string().meta({ description: 'rules file (JSON), as the detector uses', arg: 'file' }),
    csv: z
      .string()
      .meta({ description: 'readings: "timestamp,value" or "timestamp,vehicle,sensor,value"; timestamp in ms or ISO-8601', arg: 'file' }),
    // The range (100 ms to a day) is the rules file's, checked by replay itself.
    window: int().optional().meta({ description: 'window length', arg: 'ms', defaultText: "the rules file's" }),
    scores: bool()
      .default(false)
      .describe(
        "add every row with the detector's confidence that it is anomalous, in [0, 1] (0.5 = at a rule's bound), and where episodes start",
      ),
    vehicle: z.string().optional().describe('vehicle of two-column files; a filter on four-column files'),
    sensor: z
      .enum(SENSORS)
      .optional()
      .describe('sensor of two-column files (generic: any series, any unit); a filter on four-column files'),
    format: z.enum(FORMATS).default('table').describe('output: table, or JSON lines each with a "record" field (score, alert, summary)'),
  })
  .strict();

export function replayCommand(): Command {
  const cmd = describedCommand('replay');
  return withFlags(cmd, replayConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const s = flagsFrom(replayConfigSchema, flags);
      // Progress only where someone watches: a pipe or a file gets just the records.
      const tty = process.stderr.isTTY;
      const texts = boundedReplay(
        {
          rulesFile: s.rules,
          csvFile: s.csv,
          windowMs: s.window,
          scores: s.scores,
          vehicle: s.vehicle,
          sensor: s.sensor,
          onProgress: tty ? (rows) => process.stderr.write(`\rreplayed ${rows} rows`) : undefined,
        },
        s.format,
      );
      // One write per read of the file, not per line: a line's write costs more than scoring it.
      for await (const text of texts) if (!process.stdout.write(text)) await once(process.stdout, 'drain');
      if (tty) process.stderr.write('\n');
    }),
  );
}
