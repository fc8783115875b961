import assert from 'node:assert/strict';
import type { Command, Option } from 'commander';
import { describe, it } from 'vitest';
import { z } from 'zod';
import { agentConfigSchema } from '../../../agent/agent-config.js';
import { agentCommand } from '../../../bin/commands/agent.js';
import { archiverCommand } from '../../../bin/commands/archiver.js';
import { consoleCommand } from '../../../bin/commands/console.js';
import { demoCommand, demoConfigSchema } from '../../../bin/commands/demo.js';
import { detectorCommand } from '../../../bin/commands/detector.js';
import { deviceCommand, deviceConfigSchema } from '../../../bin/commands/device.js';
import { dispatcherCommand, dispatcherConfigSchema } from '../../../bin/commands/dispatcher.js';
import { evalCommand, evalConfigSchema } from '../../../bin/commands/eval.js';
import { gatewayCommand } from '../../../bin/commands/gateway.js';
import { hashPasswordCommand } from '../../../bin/commands/hash-password.js';
import { queryCommand, queryConfigSchema } from '../../../bin/commands/query.js';
import { replayCommand, replayConfigSchema } from '../../../bin/commands/replay.js';
import { simCommand, simConfigSchema } from '../../../bin/commands/sim.js';
import { storeCommand, storeCopyConfigSchema } from '../../../bin/commands/store.js';
import { flaglessSettings } from '../../../bin/flags-from-schema.js';
import { archiverConfigSchema } from '../../../cloud/archiver/archiver-config.js';
import { consoleConfigSchema } from '../../../cloud/console-config.js';
import { detectorConfigSchema } from '../../../cloud/detector-config.js';
import { gatewayConfigSchema } from '../../../gateway/gateway-config.js';
import { flagParity } from '../../support/command-flags.js';

const subcommand = (cmd: Command, name: string) => cmd.commands.find((c) => c.name() === name)!;

/**
 * Every command with the schema its action validates, the flags that are the command's own
 * rather than settings, and the settings deliberately without a flag.
 */
const COMMANDS: { name: string; cmd: () => Command; schema: z.ZodObject; commandFlags: string[]; flagless: string[] }[] = [
  { name: 'agent', cmd: agentCommand, schema: agentConfigSchema, commandFlags: ['--config', '--check-config'], flagless: ['faults'] },
  { name: 'gateway', cmd: gatewayCommand, schema: gatewayConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  { name: 'detector', cmd: detectorCommand, schema: detectorConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  {
    name: 'dispatcher',
    cmd: dispatcherCommand,
    schema: dispatcherConfigSchema,
    commandFlags: ['--config', '--check-config'],
    flagless: [],
  },
  { name: 'archiver', cmd: archiverCommand, schema: archiverConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  { name: 'console', cmd: consoleCommand, schema: consoleConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  { name: 'demo', cmd: demoCommand, schema: demoConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  { name: 'sim', cmd: simCommand, schema: simConfigSchema, commandFlags: ['--config', '--check-config'], flagless: [] },
  { name: 'replay', cmd: replayCommand, schema: replayConfigSchema, commandFlags: [], flagless: [] },
  { name: 'eval', cmd: evalCommand, schema: evalConfigSchema, commandFlags: [], flagless: [] },
  { name: 'query', cmd: queryCommand, schema: queryConfigSchema, commandFlags: ['--progress'], flagless: [] },
  { name: 'device add', cmd: () => subcommand(deviceCommand(), 'add'), schema: deviceConfigSchema, commandFlags: [], flagless: [] },
  { name: 'device revoke', cmd: () => subcommand(deviceCommand(), 'revoke'), schema: deviceConfigSchema, commandFlags: [], flagless: [] },
  { name: 'store copy', cmd: () => subcommand(storeCommand(), 'copy'), schema: storeCopyConfigSchema, commandFlags: [], flagless: [] },
  // Its one input is the user name; the password comes on stdin, never as a flag.
  { name: 'hash-password', cmd: hashPasswordCommand, schema: z.object({}), commandFlags: [], flagless: [] },
];

describe('every command has a flag for each setting and a setting for each flag', () => {
  for (const { name, cmd, schema, commandFlags, flagless } of COMMANDS) {
    it(`fleet ${name}`, () => {
      assert.deepEqual(flagParity(cmd(), schema, commandFlags), { settingsWithoutFlag: [], flagsWithoutSetting: [] });
      assert.deepEqual(flaglessSettings(schema), flagless, 'the settings deliberately without a flag');
    });
  }

  it('covers every command of fleet', () => {
    const covered = new Set(COMMANDS.map((c) => c.name.split(' ')[0]));
    for (const name of [
      'agent',
      'gateway',
      'detector',
      'dispatcher',
      'archiver',
      'console',
      'demo',
      'sim',
      'replay',
      'eval',
      'device',
      'store',
      'hash-password',
    ]) {
      assert.ok(covered.has(name), name);
    }
  });
});

describe('the parity check', () => {
  it('names a setting that has no flag', () => {
    const grown = z.object({ ...gatewayConfigSchema.shape, towHitch: z.string().describe('a setting nobody made a flag for') });
    assert.deepEqual(flagParity(gatewayCommand(), grown), { settingsWithoutFlag: ['towHitch'], flagsWithoutSetting: [] });
  });

  it('names a setting whose flag was dropped from the command', () => {
    const cmd = detectorCommand();
    const options = cmd.options as Option[];
    options.splice(
      options.findIndex((o) => o.long === '--webhook-timeout-ms'),
      1,
    );
    assert.deepEqual(flagParity(cmd, detectorConfigSchema), { settingsWithoutFlag: ['webhookTimeoutMs'], flagsWithoutSetting: [] });
  });

  it('names a flag that sets no setting', () => {
    const cmd = simCommand().option('--tow-hitch <kind>', 'a flag nobody declared a setting for');
    assert.deepEqual(flagParity(cmd, simConfigSchema), { settingsWithoutFlag: [], flagsWithoutSetting: ['--tow-hitch'] });
  });

  it('names a flag given to a setting marked flag-less', () => {
    const cmd = agentCommand().option('--faults <list>', 'faults are objects: config file only');
    assert.deepEqual(flagParity(cmd, agentConfigSchema), { settingsWithoutFlag: [], flagsWithoutSetting: ['--faults'] });
  });

  it('counts --config as a setting unless the command declares it its own', () => {
    assert.deepEqual(flagParity(agentCommand(), agentConfigSchema, ['--check-config']), {
      settingsWithoutFlag: [],
      flagsWithoutSetting: ['--config'],
    });
  });
});
