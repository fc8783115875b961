import { z } from 'zod';
import { int } from '../shared/config.js';
import { DEV_SERVICE_TOKEN } from '../gateway/gateway-config.js';

/** Used when no write token is configured; the console warns at start. */
export const DEV_WRITE_TOKEN = 'fleet-dev-write-token';

export const consoleConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: int().min(0).max(65535).default(8080),
    storePath: z.string().default('var/cloud/fleet.db'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
    serviceToken: z.string().min(8).default(DEV_SERVICE_TOKEN),
    /** Bearer token required for acknowledge and clear. */
    writeToken: z.string().min(8).default(DEV_WRITE_TOKEN),
    staleAfterMs: int().min(1000).default(30_000),
  })
  .strict();

export type ConsoleConfig = z.infer<typeof consoleConfigSchema>;
