import assert from 'node:assert/strict';
import type { Command } from 'commander';
import { describe, it } from 'vitest';
import type { z } from 'zod';
import { agentConfigSchema } from '../../../agent/agent-config.js';
import { agentCommand } from '../../../bin/commands/agent.js';
import { consoleCommand } from '../../../bin/commands/console.js';
import { demoCommand, demoConfigSchema } from '../../../bin/commands/demo.js';
import { detectorCommand } from '../../../bin/commands/detector.js';
import { deviceCommand, deviceConfigSchema } from '../../../bin/commands/device.js';
import { dispatcherCommand, dispatcherConfigSchema } from '../../../bin/commands/dispatcher.js';
import { evalCommand, evalConfigSchema } from '../../../bin/commands/eval.js';
import { gatewayCommand } from '../../../bin/commands/gateway.js';
import { replayCommand, replayConfigSchema } from '../../../bin/commands/replay.js';
import { simCommand, simConfigSchema } from '../../../bin/commands/sim.js';
import { consoleConfigSchema } from '../../../cloud/console-config.js';
import { detectorConfigSchema } from '../../../cloud/detector-config.js';
import { credentialsPathOf, gatewayConfigSchema, gatewayOptions } from '../../../gateway/gateway-config.js';
import { settingsOf } from '../../../bin/flags-from-schema.js';
import { flagName } from '../../../shared/config.js';
import { simulatedFaults } from '../../../simulators/simulated-agent.js';
import { settingsFromArgv } from '../../support/command-flags.js';

describe('flags that reach the running config', () => {
  it('gateway: --kafka-compression, --sink-retry-base-ms and --sink-retry-max-ms', async () => {
    const argv = ['--kafka-compression', 'none', '--sink-retry-base-ms', '50', '--sink-retry-max-ms', '2000'];
    const config = await settingsFromArgv(gatewayCommand(), gatewayConfigSchema, argv);
    assert.equal(config.kafkaCompression, 'none');
    // The gateway's retry loop reads them from its options.
    const options = gatewayOptions(config);
    assert.deepEqual([options.sinkRetryBaseMs, options.sinkRetryMaxMs], [50, 2000]);
  });

  it('detector and dispatcher: --webhook-timeout-ms', async () => {
    const detector = await settingsFromArgv(detectorCommand(), detectorConfigSchema, ['--webhook-timeout-ms', '750']);
    assert.equal(detector.webhookTimeoutMs, 750);
    const dispatcher = await settingsFromArgv(dispatcherCommand(), dispatcherConfigSchema, [
      '--kafka-brokers',
      '127.0.0.1:9092',
      '--webhook-timeout-ms',
      '900',
    ]);
    assert.equal(dispatcher.webhookTimeoutMs, 900);
  });

  it('agent: --overheat-at schedules an engine overheat on the simulated truck', async () => {
    const config = await settingsFromArgv(agentCommand(), agentConfigSchema, ['--vehicle', 'truck-1', '--overheat-at', '7']);
    assert.equal(config.overheatAt, 7);
    assert.deepEqual(simulatedFaults(config), [{ kind: 'engine_overheat', fromS: 7 }]);
    const quiet = await settingsFromArgv(agentCommand(), agentConfigSchema, ['--vehicle', 'truck-1']);
    assert.deepEqual(simulatedFaults(quiet), []);
  });

  it('device: --data-dir and --credentials-file say where the secrets are', async () => {
    const add = () => deviceCommand().commands.find((c) => c.name() === 'add')!;
    const byDir = await settingsFromArgv(add(), deviceConfigSchema, ['--data-dir', '/srv/gw', 'truck-1'], 'flags');
    assert.equal(credentialsPathOf(byDir), '/srv/gw/devices.json');
    const byFile = await settingsFromArgv(add(), deviceConfigSchema, ['--credentials-file', '/etc/fleet/devices.json', 'truck-1'], 'flags');
    assert.equal(credentialsPathOf(byFile), '/etc/fleet/devices.json');
    assert.equal(credentialsPathOf(await settingsFromArgv(add(), deviceConfigSchema, ['truck-1'], 'flags')), 'var/gateway/devices.json');
  });

  it('replay and eval: their flags, typed', async () => {
    const replay = await settingsFromArgv(
      replayCommand(),
      replayConfigSchema,
      ['--rules', 'r.json', '--csv', 'x.csv', '--window', '5000', '--scores', '--format', 'json'],
      'flags',
    );
    assert.deepEqual(replay, { rules: 'r.json', csv: 'x.csv', window: 5000, scores: true, format: 'json' });
    const evaluation = await settingsFromArgv(
      evalCommand(),
      evalConfigSchema,
      ['--quick', '--set', 'held-out', '--workers', '2', '--check'],
      'flags',
    );
    assert.deepEqual(evaluation, { quick: true, set: 'held-out', workers: 2, json: false, check: true });
  });
});

/** Each option's help line as commander prints it, before wrapping. */
function helpLines(cmd: Command): Map<string, string> {
  const help = cmd.createHelp();
  return new Map(cmd.options.map((o) => [o.long!, `${help.optionTerm(o)}  ${help.optionDescription(o)}`]));
}

describe('--help', () => {
  it('lists each flag with a description, and its default where it has one', () => {
    const commands: [Command, z.ZodObject][] = [
      [agentCommand(), agentConfigSchema],
      [gatewayCommand(), gatewayConfigSchema],
      [detectorCommand(), detectorConfigSchema],
      [dispatcherCommand(), dispatcherConfigSchema],
      [consoleCommand(), consoleConfigSchema],
      [demoCommand(), demoConfigSchema],
      [simCommand(), simConfigSchema],
      [replayCommand(), replayConfigSchema],
      [evalCommand(), evalConfigSchema],
    ];
    for (const [cmd, schema] of commands) {
      const lines = helpLines(cmd);
      for (const [flag, line] of lines)
        assert.match(line, /^(-c, )?--[a-z-]+( <.+>| \[true\|false\])? {2}\S.*/, `${cmd.name()} ${flag}: ${line}`);
      for (const [key, setting] of settingsOf(schema)) {
        const value: unknown = setting.safeParse(undefined).data;
        const hasDefault = value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0);
        if (hasDefault) assert.match(lines.get(flagName(key)) ?? '', /\(default: [^)]+\)/, `${cmd.name()} ${key}`);
      }
    }
    const gateway = helpLines(gatewayCommand());
    assert.equal(
      gateway.get('--kafka-compression'),
      '--kafka-compression <none|gzip>  compression of produce requests, where it makes them smaller (several records, or one of at least 256 bytes) (default: gzip)',
    );
    assert.match(gateway.get('--sink-retry-base-ms')!, /^--sink-retry-base-ms <ms> {2}first retry delay .* \(default: 200\)$/);
    assert.match(gateway.get('--sink-retry-max-ms')!, /^--sink-retry-max-ms <ms> {2}longest retry delay .* \(default: 10000\)$/);
    assert.match(gateway.get('--port')!, /\(default: 1883\)$/);
    assert.match(helpLines(detectorCommand()).get('--webhook-timeout-ms')!, /^--webhook-timeout-ms <ms> {2}.* \(default: 5000\)$/);
    assert.match(
      helpLines(agentCommand()).get('--mqtt-url')!,
      /^--mqtt-url <url> {2}gateway URL, or several comma-separated to fail over between \(default: mqtt:\/\/127\.0\.0\.1:1883\)$/,
    );
    assert.match(helpLines(agentCommand()).get('--ops-port')!, /\(default: 9101\)$/);
    assert.match(helpLines(consoleCommand()).get('--console-token')!, /\(prefer FLEET_CONSOLE_TOKEN\)$/);
  });
});
