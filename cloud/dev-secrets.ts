import { ConfigError } from '../shared/config.js';
import { gatewayAddresses } from '../shared/gateway-urls.js';
import { DEV_SERVICE_TOKEN } from '../shared/service-token.js';
import { DEV_CONSOLE_TOKEN } from './console-config.js';

/**
 * The built-in development secrets let the demo and the tests run with nothing configured.
 * They are public (they are in this repository), so they are honoured only where nobody
 * else can reach: a console listening on loopback, a service talking to a gateway on
 * loopback. Anywhere else the command stops and names the variable to set.
 */
export function requireConsoleSecret(host: string, token: string | undefined): void {
  if (token !== DEV_CONSOLE_TOKEN || isLoopback(host)) return;
  throw new ConfigError(
    `consoleToken: the development console token is accepted only on loopback, not on ${host}; set FLEET_CONSOLE_TOKEN or FLEET_CONSOLE_USERS`,
  );
}

/** `mqttUrl`: one gateway URL or several; the token goes to each of them. */
export function requireServiceSecret(mqttUrl: string, token: string): void {
  const host = gatewayAddresses(mqttUrl).find((a) => !isLoopback(a.host))?.host;
  if (token !== DEV_SERVICE_TOKEN || host === undefined) return;
  throw new ConfigError(
    `serviceToken: the development service token is sent only to a gateway on loopback, not to ${host}; set FLEET_SERVICE_TOKEN`,
  );
}

/** A host name or address that only this machine can reach (a URL's IPv6 host keeps its brackets). */
function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(h);
}
