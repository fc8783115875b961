import type { Command } from 'commander';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { consoleConfigSchema, DEV_CONSOLE_TOKEN, effectiveToken, type ConsoleAccess } from '../../cloud/console-config.js';
import { loadRules } from '../../cloud/detector-config.js';
import { requireConsoleSecret, requireServiceSecret } from '../../cloud/dev-secrets.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export function consoleCommand(): Command {
  const cmd = describedCommand('console');
  return withSettings(cmd, consoleConfigSchema).action((flags: Record<string, unknown>) =>
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

/**
 * The configured token, or the development one (with a warning) when nobody could sign in
 * otherwise; that one only for a console listening on loopback.
 */
export function consoleToken(c: ConsoleAccess & { host: string }, log: Logger): string | undefined {
  const token = effectiveToken(c);
  requireConsoleSecret(c.host, token);
  if (token === DEV_CONSOLE_TOKEN)
    log.warn('using the development console token; set FLEET_CONSOLE_TOKEN or FLEET_CONSOLE_USERS in production');
  return token;
}
