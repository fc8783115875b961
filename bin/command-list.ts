import { Command } from 'commander';

/**
 * Every `fleet` command: its name, what it does, and the module that builds it. A run loads
 * only the module of the command it runs (a truck agent never loads aedes, kafkajs or the AWS
 * SDK); `fleet --help` lists them all from here, so the list costs no module.
 */
export const COMMANDS = [
  {
    name: 'demo',
    description: 'run the whole system on one machine: gateway, embedded stream, detector, console and simulated trucks',
    load: async () => (await import('./commands/demo.js')).demoCommand,
  },
  {
    name: 'agent',
    description: 'run one truck agent: sample sensors, buffer durably in SQLite, publish to the gateway over MQTT',
    load: async () => (await import('./commands/agent.js')).agentCommand,
  },
  {
    name: 'gateway',
    description: 'run the MQTT gateway (aedes): validate telemetry, write it to the sinks, PUBACK after they have it',
    load: async () => (await import('./commands/gateway.js')).gatewayCommand,
  },
  {
    name: 'detector',
    description: 'run the windowed anomaly detector: read the stream, evaluate rules in event time, raise and dispatch alerts',
    load: async () => (await import('./commands/detector.js')).detectorCommand,
  },
  {
    name: 'dispatcher',
    description: 'consume fleet.alerts and tell the driver, a webhook and an SNS topic, each at most once per alert',
    load: async () => (await import('./commands/dispatcher.js')).dispatcherCommand,
  },
  {
    name: 'archiver',
    description: 'archive every reading of the stream once, as Parquet files by hour in a directory or an S3 bucket',
    load: async () => (await import('./commands/archiver.js')).archiverCommand,
  },
  {
    name: 'console',
    description: 'serve the fleet console and its HTTP API (also /healthz and /metrics)',
    load: async () => (await import('./commands/console.js')).consoleCommand,
  },
  {
    name: 'sim',
    description: 'run simulated trucks: each a real agent with its own buffer and MQTT session, fed by a truck model',
    load: async () => (await import('./commands/sim.js')).simCommand,
  },
  {
    name: 'replay',
    description: 'run recorded readings through the detector in event time and print the alerts (tune rules on history)',
    load: async () => (await import('./commands/replay.js')).replayCommand,
  },
  {
    name: 'query',
    description: 'run SQL over the archive (Parquet in a directory or an S3 bucket) with DuckDB',
    load: async () => (await import('./commands/query.js')).queryCommand,
  },
  {
    name: 'eval',
    description: 'score the detector on simulated, labelled truck-days: recall and time to detect per fault, false alerts per truck-day',
    load: async () => (await import('./commands/eval.js')).evalCommand,
  },
  {
    name: 'device',
    description: "enroll and revoke vehicles for the gateway's password mode (a running gateway picks changes up within a second)",
    load: async () => (await import('./commands/device.js')).deviceCommand,
  },
  {
    name: 'store',
    description: 'work on an operational store (SQLite file or PostgreSQL database)',
    load: async () => (await import('./commands/store.js')).storeCommand,
  },
  {
    name: 'hash-password',
    description: 'print a console user entry (name:scrypt hash) for --console-users; the password is read from stdin',
    load: async () => (await import('./commands/hash-password.js')).hashPasswordCommand,
  },
] as const;

export type CommandName = (typeof COMMANDS)[number]['name'];

/** A command with its name and description from the list: what its module builds on, and what --help lists for the others. */
export function describedCommand(name: CommandName): Command {
  return new Command(name).description(COMMANDS.find((c) => c.name === name)!.description);
}
