import { Command, Option } from 'commander';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { consoleConfigSchema, DEV_CONSOLE_TOKEN, effectiveToken, type ConsoleAccess } from '../../cloud/console-config.js';
import { loadRules } from '../../cloud/detector-config.js';
import { requireConsoleSecret, requireServiceSecret } from '../../cloud/dev-secrets.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { configFrom, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function consoleCommand(): Command {
  const cmd = new Command('console')
    .description('serve the fleet console and its HTTP API (also /healthz and /metrics)')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'HTTP port (default 8080, 0 = any free port)')
    .option('--store-path <file>', 'operational store written by the detector (default var/cloud/fleet.db)')
    .option('--mqtt-url <url>', 'gateway URL, for online/offline status (default mqtt://127.0.0.1:1883)')
    .option('--service-token <token>', 'gateway service password (prefer FLEET_SERVICE_TOKEN)')
    .option('--rules-file <file>', "the detector's rules, whose thresholds the charts draw (default: built-in rules)")
    .option('--stale-after-ms <ms>', 'values older than this show as stale (default 30000)')
    .option('--max-connections <n>', 'open connections at most; more are closed unanswered (default 1000)');
  return withConfig(consoleAccessOptions(cmd)).action((flags) =>
    runCommand(async () => {
      const config = configFrom(consoleConfigSchema, flags);
      requireServiceSecret(config.mqttUrl, config.serviceToken);
      const log = createLogger('console');
      const server = new ConsoleServer({ ...config, consoleToken: consoleToken(config, log), rules: loadRules(config) }, log);
      await server.start();
      process.stdout.write(`fleet console: ${server.url}\n`);
      stopOnSignals([server]);
    }),
  );
}

/** Sign-in and map settings: the same flags on `fleet console` and `fleet demo`. */
export const consoleAccessOptions = (cmd: Command): Command =>
  cmd
    .option('--console-token <token>', 'shared console token: sign in under any name that is not a user, or send as a bearer token (prefer FLEET_CONSOLE_TOKEN)')
    .option('--console-users <list>', 'comma-separated name:hash entries from `fleet hash-password` (prefer FLEET_CONSOLE_USERS)')
    .addOption(new Option('--public-reads <on>', 'let anyone read the console without signing in; writing still needs a sign-in (default false)').choices(['true', 'false']))
    .option('--tile-url <url>', 'map tile URL with {z}/{x}/{y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (default: none, a plain grid)')
    .option('--tile-attribution <text>', 'attribution shown under the map tiles');

/**
 * The configured token, or the development one (with a warning) when nobody could sign in
 * otherwise; that one only for a console listening on loopback.
 */
export function consoleToken(c: ConsoleAccess & { host: string }, log: Logger): string | undefined {
  const token = effectiveToken(c);
  requireConsoleSecret(c.host, token);
  if (token === DEV_CONSOLE_TOKEN) log.warn('using the development console token; set FLEET_CONSOLE_TOKEN or FLEET_CONSOLE_USERS in production');
  return token;
}
