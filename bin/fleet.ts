#!/usr/bin/env node
import { Command } from 'commander';
import { COMMANDS, describedCommand } from './command-list.js';

const program = new Command('fleet')
  .description('fleet telemetry: truck agents, MQTT gateway, event-time anomaly detector and console')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

// Only the command being run is built from its module; the others are listed by name and
// description, which is all `fleet --help` shows of them (`fleet help CMD` names the command second).
const args = process.argv.slice(2);
const named = args[0] === 'help' ? args[1] : args.find((a) => !a.startsWith('-'));
for (const entry of COMMANDS) program.addCommand(entry.name === named ? (await entry.load())() : describedCommand(entry.name));

// Usage errors (unknown flag, missing value) exit 2 like other bad input.
program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
for (const sub of program.commands.flatMap((c) => [c, ...c.commands])) sub.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
await program.parseAsync(process.argv);
