import type { Command } from 'commander';
import type { z } from 'zod';
import { flaglessSettings } from '../../bin/flags-from-schema.js';
import { configFrom, flagsFrom } from '../../bin/cli-support.js';
import { flagName } from '../../shared/config.js';

export interface FlagParity {
  /** Settings of the schema that no flag sets (and that are not marked `flag: false`). */
  settingsWithoutFlag: string[];
  /** Flags of the command that set no setting of the schema. */
  flagsWithoutSetting: string[];
}

/**
 * How a command's flags and its settings schema differ: each setting should have its flag
 * (`bufferMaxBytes` ↔ `--buffer-max-bytes`) unless it is marked flag-less, and each flag a
 * setting, but for the command's own flags such as `--config`.
 */
export function flagParity(
  cmd: Command,
  schema: z.ZodObject,
  commandFlags: readonly string[] = ['--config', '--check-config'],
): FlagParity {
  const flagless = new Set(flaglessSettings(schema));
  const settings = Object.keys(schema.shape).filter((key) => !flagless.has(key));
  const flags = cmd.options.map((option) => option.long ?? option.flags).filter((flag) => !commandFlags.includes(flag));
  return {
    settingsWithoutFlag: settings.filter((key) => !flags.includes(flagName(key))),
    flagsWithoutSetting: flags.filter((flag) => !settings.some((key) => flagName(key) === flag)),
  };
}

/**
 * The settings a command would run with for these arguments: its own flags parsed by
 * commander and validated by its schema as its action does, with no environment and no
 * config file, and without running it.
 */
export async function settingsFromArgv<S extends z.ZodObject>(
  cmd: Command,
  schema: S,
  argv: string[],
  sources: 'layered' | 'flags' = 'layered',
): Promise<z.infer<S>> {
  await cmd
    .exitOverride()
    .action(() => {})
    .parseAsync(argv, { from: 'user' });
  const flags = cmd.opts();
  return sources === 'layered' ? configFrom(schema, flags, undefined, {}) : flagsFrom(schema, flags);
}
