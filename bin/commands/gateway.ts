import cluster from 'node:cluster';
import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { Gateway } from '../../gateway/gateway.js';
import { gatewayConfigSchema, gatewayOptions, type GatewayConfig } from '../../gateway/gateway-config.js';
import { createSinks } from '../../gateway/sinks/create-sinks.js';
import { answerPrimary, GatewayWorkers } from '../../gateway/workers.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { DEV_SERVICE_TOKEN } from '../../shared/service-token.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export function gatewayCommand(): Command {
  const cmd = describedCommand('gateway');
  return withSettings(cmd, gatewayConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const config = configFrom(gatewayConfigSchema, flags);
      const log = createLogger('gateway');
      if (config.workers > 1 && cluster.isPrimary) {
        const workers = new GatewayWorkers(config, log);
        await workers.start();
        stopOnSignals([workers]);
      } else if (cluster.isWorker) {
        // Its own aedes id in the cluster (a default one is new in every process); the primary serves the ops port for all.
        const gatewayId = config.gatewayId && `${config.gatewayId}-${process.pid}`;
        const gateway = await startGateway({ ...config, gatewayId, reusePort: true, opsPort: -1 }, log);
        answerPrimary(gateway, stopOnSignals([gateway]));
      } else {
        stopOnSignals([await startGateway(config, log)]);
      }
    }),
  );
}

export async function startGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  // The stream and the dead letters are vehicles' data: not for other users of the machine.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  if (config.serviceToken === DEV_SERVICE_TOKEN) log.warn('using the development service token; set FLEET_SERVICE_TOKEN in production');
  const gateway = new Gateway(gatewayOptions(config), createSinks(config, log), log);
  await gateway.start();
  return gateway;
}
