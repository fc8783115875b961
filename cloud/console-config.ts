import { z } from 'zod';
import { bool, int, list } from '../shared/config.js';
import { DEV_SERVICE_TOKEN } from '../shared/service-token.js';
import { USER_ENTRY } from './console/passwords.js';

/** Used when neither a token nor users are configured; the console warns at start. */
export const DEV_CONSOLE_TOKEN = 'fleet-dev-console-token';

/** Sign-in settings, shared by `fleet console` and `fleet demo`. */
export const consoleAccessSettings = {
  /** Shared secret: signs in under any name that is not a configured user, or is sent as a bearer token. */
  consoleToken: z.string().min(8).optional(),
  /** `name:scrypt$…` entries, as `fleet hash-password` prints them. */
  consoleUsers: list(z.string().regex(USER_ENTRY, 'each entry must be name:hash as printed by `fleet hash-password`')).default([]),
  /** Lets anyone read (vehicles, map, alerts) without signing in; writing always needs a sign-in. */
  publicReads: bool().default(false),
  /** Map tiles, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png; empty: a plain grid, no network. */
  tileUrl: z
    .string()
    .regex(/^(https?:\/\/[^/\s]+)?\/\S*\{z\}\S*$/, 'must be an http(s) URL or a path with {z}, {x} and {y}')
    .or(z.literal(''))
    .default(''),
  tileAttribution: z.string().max(300).default(''),
};

export const consoleConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: int().min(0).max(65535).default(8080),
    storePath: z.string().default('var/cloud/fleet.db'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
    serviceToken: z.string().min(8).default(DEV_SERVICE_TOKEN),
    /** The detector's rules, so charts draw the same thresholds; built-in rules when absent. */
    rulesFile: z.string().optional(),
    staleAfterMs: int().min(1000).default(30_000),
    /** Open connections at most; each page holds one for its event stream. */
    maxConnections: int().min(1).default(1000),
    ...consoleAccessSettings,
  })
  .strict();

export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
export type ConsoleAccess = Pick<ConsoleConfig, 'consoleToken' | 'consoleUsers'>;

/** The dev token stands in only when nothing else would let anyone sign in. */
export function effectiveToken(c: ConsoleAccess): string | undefined {
  return c.consoleToken ?? (c.consoleUsers.length === 0 ? DEV_CONSOLE_TOKEN : undefined);
}
