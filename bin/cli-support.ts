import type { Command } from 'commander';
import type { z } from 'zod';
import { ConfigError, envName, flagName, loadConfig } from '../shared/config.js';
import { ContractError } from '../shared/contract/errors.js';
import { addSettingFlags } from './flags-from-schema.js';

/** Things a command holds open until a signal or its own end. */
export interface Stoppable {
  stop(): Promise<void>;
}

/** The settings the command runs with, once loaded: a port found taken is named by the setting that chose it. */
let settings: Record<string, unknown> = {};

/**
 * Runs a command's body: bad input (config, contract, a port already taken) exits 2 with the
 * message alone; anything else exits 1 with the stack, since it is a bug to report.
 */
export async function runCommand(body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (err) {
    const message = err instanceof ConfigError || err instanceof ContractError ? err.message : portProblem(err as NodeJS.ErrnoException);
    if (message !== undefined) {
      process.stderr.write(`fleet: ${message}\n`);
      process.exit(2);
    }
    process.stderr.write(`fleet: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}

/** A listen refused because the port is taken (or privileged), with the flag that moves it. */
function portProblem(err: NodeJS.ErrnoException & { port?: number; address?: string }): string | undefined {
  if ((err.code !== 'EADDRINUSE' && err.code !== 'EACCES') || err.syscall !== 'listen' || err.port === undefined) return undefined;
  const where = `port ${err.port} on ${err.address ?? 'all addresses'}`;
  const problem =
    err.code === 'EADDRINUSE' ? `${where} is already in use by another process` : `${where} needs privileges this process does not have`;
  const setting = Object.keys(settings).find((key) => /port$/i.test(key) && Number(settings[key]) === err.port);
  const fix = setting
    ? `choose another with ${flagName(setting)} (or ${envName(setting)}; 0 picks a free one)`
    : 'stop what holds it or choose another port';
  return `${problem}: ${fix}`;
}

/** Stops the parts in reverse order on SIGINT/SIGTERM, then exits 0. */
export function stopOnSignals(parts: Stoppable[]): () => void {
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    let failed = false;
    // Each part gets its stop even when an earlier one fails, so state is saved where it can be.
    for (const part of [...parts].reverse()) {
      await part.stop().catch((err: unknown) => {
        failed = true;
        process.stderr.write(`fleet: while stopping: ${(err as Error).stack ?? String(err)}\n`);
      });
    }
    process.exit(failed ? 1 : 0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  return () => void stop();
}

/**
 * A long-running command's settings: a flag for each (from its schema), and beneath the
 * flags a `--config FILE` and FLEET_* environment variables.
 */
export function withSettings(cmd: Command, schema: z.ZodObject): Command {
  return addSettingFlags(cmd, schema)
    .option('-c, --config <file>', 'JSON config file (flags and FLEET_* environment variables override it)')
    .option('--check-config', 'check the settings (and the files they name) and exit: 0 if the command would start with them')
    .addHelpText('after', '\nEvery setting can also come from the config file (camelCase key) or from FLEET_<SETTING> in the environment.');
}

/**
 * A command's settings from its `--config` file, FLEET_* environment and the other flags.
 * With --check-config it exits here instead, once `check` (what the command derives from
 * its settings before starting, such as reading the files they name) has passed too: a
 * device provisioning step or a deploy checks a config before putting it in place.
 */
export function configFrom<S extends z.ZodObject>(
  schema: S,
  flags: Record<string, unknown>,
  check: (config: z.infer<S>) => unknown = () => undefined,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const { config: file, checkConfig, ...rest } = flags as Record<string, unknown> & { config?: string; checkConfig?: boolean };
  const config = loadConfig(schema, { file, env, flags: rest });
  settings = config;
  if (checkConfig) {
    check(config);
    process.stdout.write(`fleet: the settings are valid${file ? ` (${file})` : ''}\n`);
    process.exit(0);
  }
  return config;
}

/**
 * A one-off tool's settings (replay, eval, device): flags alone. Its inputs are named on
 * each run, and a FLEET_VEHICLE meant for an agent must not quietly filter a replay.
 */
export function withFlags(cmd: Command, schema: z.ZodObject): Command {
  return addSettingFlags(cmd, schema, { mandatory: true });
}

export function flagsFrom<S extends z.ZodObject>(schema: S, flags: Record<string, unknown>): z.infer<S> {
  return loadConfig(schema, { flags });
}

/**
 * Progress of long work on stderr, `copied 1200/5000 readings (900/s)`: a terminal gets a line
 * that updates in place, a log a line at every tenth of the total. `end` closes the line.
 */
export function progressOnStderr(verb: string, unit: string): { update: (done: number, total: number) => void; end: () => void } {
  const started = Date.now();
  const tty = process.stderr.isTTY;
  let tenths = 0;
  let shown = false;
  const line = (done: number, total: number) =>
    `${verb} ${done}/${total} ${unit} (${Math.round(done / Math.max((Date.now() - started) / 1000, 0.001))}/s)`;
  return {
    update: (done, total) => {
      shown = true;
      if (tty) process.stderr.write(`\r${line(done, total)}`);
      else if (total > 0 && Math.floor((10 * done) / total) > tenths) {
        tenths = Math.floor((10 * done) / total);
        process.stderr.write(`${line(done, total)}\n`);
      }
    },
    end: () => {
      if (tty && shown) process.stderr.write('\n');
    },
  };
}
