import { Command } from 'commander';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { consoleConfigSchema, DEV_WRITE_TOKEN } from '../../cloud/console-config.js';
import { createLogger } from '../../shared/log.js';
import { configFrom, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function consoleCommand(): Command {
  const cmd = new Command('console')
    .description('serve the fleet console and its HTTP API (also /healthz and /metrics)')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'HTTP port (default 8080, 0 = any free port)')
    .option('--store-path <file>', 'operational store written by the detector (default var/cloud/fleet.db)')
    .option('--mqtt-url <url>', 'gateway URL, for online/offline status (default mqtt://127.0.0.1:1883)')
    .option('--service-token <token>', 'gateway service password (prefer FLEET_SERVICE_TOKEN)')
    .option('--write-token <token>', 'bearer token for acknowledge/clear (prefer FLEET_WRITE_TOKEN)')
    .option('--stale-after-ms <ms>', 'values older than this show as stale (default 30000)');
  return withConfig(cmd).action((flags) =>
    runCommand(async () => {
      const config = configFrom(consoleConfigSchema, flags);
      const log = createLogger('console');
      if (config.writeToken === DEV_WRITE_TOKEN) log.warn('using the development write token; set FLEET_WRITE_TOKEN in production');
      const server = new ConsoleServer(config, log);
      await server.start();
      process.stdout.write(`fleet console: ${server.url}\n`);
      stopOnSignals([server]);
    }),
  );
}
