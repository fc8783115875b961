import { once } from 'node:events';
import { Command, Option } from 'commander';
import { FORMATS, formatReplay, type ReplayFormat } from '../../cloud/replay/format.js';
import { replay } from '../../cloud/replay/replay.js';
import { ConfigError } from '../../shared/config.js';
import { SENSORS, type SensorId } from '../../shared/contract/reading.js';
import { runCommand } from '../cli-support.js';

export function replayCommand(): Command {
  return new Command('replay')
    .description('run recorded readings through the detector in event time and print the alerts (tune rules on history)')
    .requiredOption('--rules <file>', 'rules file (JSON), as the detector uses')
    .requiredOption('--csv <file>', 'readings: "timestamp,value" or "timestamp,vehicle,sensor,value"; timestamp in ms or ISO-8601')
    .option('--window <ms>', 'window length, overriding the rules file')
    .option('--scores', "add every row with the detector's confidence that it is anomalous, in [0, 1] (0.5 = at a rule's bound), and where episodes start")
    .option('--vehicle <id>', 'vehicle of two-column files; a filter on four-column files')
    .addOption(new Option('--sensor <id>', 'sensor of two-column files (generic: any series, any unit); a filter on four-column files').choices(SENSORS))
    .addOption(new Option('--format <format>', 'output: table, or JSON lines each with a "record" field (score, alert, summary)').choices(FORMATS).default('table'))
    .action((flags: { rules: string; csv: string; window?: string; scores?: boolean; vehicle?: string; sensor?: SensorId; format: ReplayFormat }) =>
      runCommand(async () => {
        const windowMs = flags.window === undefined ? undefined : Number(flags.window);
        if (windowMs !== undefined && !Number.isInteger(windowMs)) throw new ConfigError(`--window: expected milliseconds, got "${flags.window}"`);
        // Progress only where someone watches: a pipe or a file gets just the records.
        const tty = process.stderr.isTTY;
        const records = replay({
          rulesFile: flags.rules,
          csvFile: flags.csv,
          windowMs,
          scores: flags.scores,
          vehicle: flags.vehicle,
          sensor: flags.sensor,
          onProgress: tty ? (rows) => process.stderr.write(`\rreplayed ${rows} rows`) : undefined,
        });
        for await (const line of formatReplay(records, flags.format)) {
          if (!process.stdout.write(`${line}\n`)) await once(process.stdout, 'drain');
        }
        if (tty) process.stderr.write('\n');
      }),
    );
}
