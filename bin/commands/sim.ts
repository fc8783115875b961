import { Command } from 'commander';
import { z } from 'zod';
import { int } from '../../shared/config.js';
import { createLogger } from '../../shared/log.js';
import { createRegistry, startOpsServer } from '../../shared/ops-server.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

const simConfigSchema = z
  .object({
    trucks: int().min(1).max(10_000).default(10),
    prefix: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/).default('truck-'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
    dataDir: z.string().default('var/sim'),
    simHz: z.coerce.number<unknown>().positive().max(1000).optional(),
    overheatTruck: int().min(1).optional(),
    overheatAt: z.coerce.number<unknown>().min(0).default(20),
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9104),
  })
  .strict();

export function simCommand(): Command {
  const cmd = new Command('sim')
    .description('run simulated trucks: each a real agent with its own buffer and MQTT session, fed by a truck model')
    .option('--trucks <n>', 'number of trucks (default 10)')
    .option('--prefix <text>', 'vehicle id prefix (default truck-)')
    .option('--mqtt-url <url>', 'gateway URL (default mqtt://127.0.0.1:1883)')
    .option('--data-dir <dir>', 'where the trucks keep their buffers (default var/sim)')
    .option('--sim-hz <hz>', 'sample every sensor at this rate (default: engine 2, cargo 1, speed 2, rpm 2, gps 1 Hz)')
    .option('--overheat-truck <n>', 'this truck (1-based) overheats')
    .option('--overheat-at <s>', 'seconds after start the overheat begins (default 20)');
  return opsOptions(withConfig(cmd), 9104).action((flags) =>
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
        },
        log,
        registry,
      );
      await fleet.start();
      const ops = c.opsPort >= 0 ? await startOpsServer(c.opsHost, c.opsPort, registry, () => ({ ok: true, trucks: c.trucks }), log) : undefined;
      log.info({ trucks: c.trucks }, 'simulated fleet running');
      stopOnSignals([fleet, { stop: async () => void ops?.close() }]);
    }),
  );
}
