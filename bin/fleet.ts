#!/usr/bin/env node
import { Command } from 'commander';
import { agentCommand } from './commands/agent.js';
import { archiverCommand } from './commands/archiver.js';
import { consoleCommand } from './commands/console.js';
import { demoCommand } from './commands/demo.js';
import { detectorCommand } from './commands/detector.js';
import { deviceCommand } from './commands/device.js';
import { dispatcherCommand } from './commands/dispatcher.js';
import { evalCommand } from './commands/eval.js';
import { gatewayCommand } from './commands/gateway.js';
import { hashPasswordCommand } from './commands/hash-password.js';
import { queryCommand } from './commands/query.js';
import { replayCommand } from './commands/replay.js';
import { simCommand } from './commands/sim.js';
import { storeCommand } from './commands/store.js';

const program = new Command('fleet')
  .description('fleet telemetry: truck agents, MQTT gateway, event-time anomaly detector and console')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .addCommand(demoCommand())
  .addCommand(agentCommand())
  .addCommand(gatewayCommand())
  .addCommand(detectorCommand())
  .addCommand(dispatcherCommand())
  .addCommand(archiverCommand())
  .addCommand(consoleCommand())
  .addCommand(simCommand())
  .addCommand(replayCommand())
  .addCommand(queryCommand())
  .addCommand(evalCommand())
  .addCommand(deviceCommand())
  .addCommand(storeCommand())
  .addCommand(hashPasswordCommand());

// Usage errors (unknown flag, missing value) exit 2 like other bad input.
program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
for (const sub of program.commands.flatMap((c) => [c, ...c.commands])) sub.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync(process.argv);
