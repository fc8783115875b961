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
    .option('--scores', "add each row's anomaly score in [0, 1] (0.5 = at a rule's bound)")
    .option('--vehicle <id>', 'vehicle of two-column files; a filter on four-column files')
    .addOption(new Option('--sensor <id>', 'sensor of two-column files; a filter on four-column files').choices(SENSORS))
    .addOption(new Option('--format <format>', 'output').choices(FORMATS).default('table'))
    .action((flags: { rules: string; csv: string; window?: string; scores?: boolean; vehicle?: string; sensor?: SensorId; format: ReplayFormat }) =>
      runCommand(async () => {
        const windowMs = flags.window === undefined ? undefined : Number(flags.window);
        if (windowMs !== undefined && !Number.isInteger(windowMs)) throw new ConfigError(`--window: expected milliseconds, got "${flags.window}"`);
        const result = await replay({
          rulesFile: flags.rules,
          csvFile: flags.csv,
          windowMs,
          scores: flags.scores,
          vehicle: flags.vehicle,
          sensor: flags.sensor,
          onProgress: (rows) => process.stderr.write(`\rreplayed ${rows} rows`),
        });
        process.stderr.write('\n');
        for (const line of formatReplay(result, flags.format)) process.stdout.write(`${line}\n`);
      }),
    );
}
