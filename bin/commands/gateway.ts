import { mkdirSync } from 'node:fs';
import { Command } from 'commander';
import { Gateway } from '../../gateway/gateway.js';
import { DEV_SERVICE_TOKEN, gatewayConfigSchema, gatewayOptions, streamPathOf, type GatewayConfig } from '../../gateway/gateway-config.js';
import { EmbeddedSink } from '../../gateway/sinks/embedded/embedded-sink.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function gatewayCommand(): Command {
  const cmd = new Command('gateway')
    .description('run the MQTT gateway (aedes): validate telemetry, write it to the sinks, PUBACK after they have it')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'MQTT port (default 1883, 0 = any free port)')
    .option('--data-dir <dir>', 'embedded stream and dead letters (default var/gateway)')
    .option('--stream-path <file>', 'embedded stream file (default DATA_DIR/stream.db)')
    .option('--max-payload-bytes <n>', 'larger telemetry payloads are dead-lettered (default 262144)')
    .option('--service-token <token>', 'password of the "service" MQTT user (prefer FLEET_SERVICE_TOKEN)');
  return opsOptions(withConfig(cmd), 9102).action((flags) =>
    runCommand(async () => {
      const config = configFrom(gatewayConfigSchema, flags);
      const log = createLogger('gateway');
      const gateway = await startGateway(config, log);
      stopOnSignals([gateway]);
    }),
  );
}

export async function startGateway(config: GatewayConfig, log: Logger): Promise<Gateway> {
  mkdirSync(config.dataDir, { recursive: true });
  if (config.serviceToken === DEV_SERVICE_TOKEN) log.warn('using the development service token; set FLEET_SERVICE_TOKEN in production');
  const gateway = new Gateway(gatewayOptions(config), [new EmbeddedSink(streamPathOf(config))], log);
  await gateway.start();
  return gateway;
}
