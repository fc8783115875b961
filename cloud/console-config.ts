import { z } from 'zod';
import { bool, int, list } from '../shared/config.js';
import { CONSOLE_PORT, DATA_DIRS, LOOPBACK_HOST, STORE_FILE } from '../shared/defaults.js';
import { gatewayUrls, storeSetting } from '../shared/settings.js';
import { serviceTokenSetting } from '../shared/service-token.js';
import { USER_ENTRY } from './console/passwords.js';

/** Used when neither a token nor users are configured; the console warns at start. */
export const DEV_CONSOLE_TOKEN = 'fleet-dev-console-token';

/** Also what a ConsoleServer built without them uses (as tests build it). */
export const DEFAULT_STALE_AFTER_MS = 30_000;
export const DEFAULT_MAX_CONNECTIONS = 1000;

/** Sign-in and map settings, shared by `fleet console` and `fleet demo`. */
export const consoleAccessSettings = {
  consoleToken: z
    .string()
    .min(8)
    .optional()
    .meta({ description: 'shared console token: sign in under any name that is not a user, or send as a bearer token', secret: true }),
  consoleUsers: list(z.string().regex(USER_ENTRY, 'each entry must be name:hash as printed by `fleet hash-password`'))
    .default([])
    .meta({ description: 'comma-separated name:hash entries from `fleet hash-password`', secret: true }),
  publicReads: bool().default(false).describe('let anyone read the console without signing in; writing still needs a sign-in'),
  // Empty: a plain grid, and the page fetches nothing from the internet.
  tileUrl: z
    .string()
    .regex(/^(https?:\/\/[^/\s]+)?\/\S*\{z\}\S*$/, 'must be an http(s) URL or a path with {z}, {x} and {y}')
    .or(z.literal(''))
    .default('')
    .meta({
      description: 'map tile URL with {z}/{x}/{y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png',
      defaultText: 'none, a plain grid',
    }),
  tileAttribution: z.string().max(300).default('').describe('attribution shown under the map tiles'),
};

export const consoleConfigSchema = z
  .object({
    host: z.string().default(LOOPBACK_HOST).describe('listen address'),
    port: int().min(0).max(65535).default(CONSOLE_PORT).describe('HTTP port (0 = any free port)'),
    // The detector writes it at the same time (SQLite: WAL).
    store: storeSetting
      .default(`${DATA_DIRS.cloud}/${STORE_FILE}`)
      .describe('operational store written by the detector: a SQLite file or a postgres:// URL'),
    mqttUrl: gatewayUrls.describe('gateway URL, for online/offline status, or several comma-separated to fail over between'),
    serviceToken: serviceTokenSetting,
    rulesFile: z
      .string()
      .optional()
      .meta({ description: "the detector's rules, whose thresholds the charts draw", defaultText: 'built-in rules' }),
    staleAfterMs: int().min(1000).default(DEFAULT_STALE_AFTER_MS).describe('values older than this show as stale'),
    // Each page holds one for its event stream.
    maxConnections: int().min(1).default(DEFAULT_MAX_CONNECTIONS).describe('open connections at most; more are closed unanswered'),
    ...consoleAccessSettings,
  })
  .strict();

export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
export type ConsoleAccess = Pick<ConsoleConfig, 'consoleToken' | 'consoleUsers'>;

/** The dev token stands in only when nothing else would let anyone sign in. */
export function effectiveToken(c: ConsoleAccess): string | undefined {
  return c.consoleToken ?? (c.consoleUsers.length === 0 ? DEV_CONSOLE_TOKEN : undefined);
}
