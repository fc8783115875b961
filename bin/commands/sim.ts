import type { Command } from 'commander';
import { z } from 'zod';
import { agentConfigSchema, simHzSetting } from '../../agent/agent-config.js';
import { int, parseFile } from '../../shared/config.js';
import { DATA_DIRS, OPS_PORTS } from '../../shared/defaults.js';
import { gatewayUrls, opsSettings } from '../../shared/settings.js';
import { createLogger } from '../../shared/log.js';
import { createRegistry, startOpsServer } from '../../shared/ops-server.js';
import { SimulatedFleet, truckSecretsSchema } from '../../simulators/simulated-fleet.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export const simConfigSchema = z
  .object({
    trucks: int().min(1).max(10_000).default(10).describe('number of trucks'),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,40}$/)
      .default('truck-')
      .describe('vehicle id prefix'),
    mqttUrl: gatewayUrls,
    dataDir: z.string().default(DATA_DIRS.sim).describe('where the trucks keep their buffers'),
    simHz: simHzSetting,
    overheatTruck: int().min(1).optional().describe('this truck (1-based) overheats'),
    overheatAt: z.coerce.number<unknown>().min(0).default(20).meta({ description: 'seconds after start the overheat begins', arg: 's' }),
    secretsFile: z
      .string()
      .optional()
      .describe('for a gateway in password mode: a JSON file {"<vehicle>": "<secret>"} with every truck\'s secret from "fleet device add"'),
    lingerMs: agentConfigSchema.shape.lingerMs,
    drainOnStopMs: agentConfigSchema.shape.drainOnStopMs,
    ...opsSettings(OPS_PORTS.sim),
  })
  .strict();

export function simCommand(): Command {
  const cmd = describedCommand('sim');
  return withSettings(cmd, simConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const c = configFrom(simConfigSchema, flags);
      const log = createLogger('sim');
      const registry = createRegistry('sim');
      const fleet = new SimulatedFleet(
        {
          count: c.trucks,
          prefix: c.prefix,
          mqttUrl: c.mqttUrl,
          dataDir: c.dataDir,
          simHz: c.simHz,
          overheat: c.overheatTruck === undefined ? undefined : { truck: c.overheatTruck, atS: c.overheatAt },
          secrets: c.secretsFile === undefined ? undefined : parseFile(truckSecretsSchema, c.secretsFile),
          agent: { lingerMs: c.lingerMs, drainOnStopMs: c.drainOnStopMs },
        },
        log,
        registry,
      );
      await fleet.start();
      const ops =
        c.opsPort >= 0 ? await startOpsServer(c.opsHost, c.opsPort, registry, () => ({ ok: true, trucks: c.trucks }), log) : undefined;
      log.info({ trucks: c.trucks }, 'simulated fleet running');
      stopOnSignals([fleet, { stop: async () => void ops?.close() }]);
    }),
  );
}
