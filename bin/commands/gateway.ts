import { mkdirSync } from 'node:fs';
import { Command, Option } from 'commander';
import { Gateway } from '../../gateway/gateway.js';
import { gatewayConfigSchema, gatewayOptions, type GatewayConfig } from '../../gateway/gateway-config.js';
import { createSinks } from '../../gateway/sinks/create-sinks.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { DEV_SERVICE_TOKEN } from '../../shared/service-token.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function gatewayCommand(): Command {
  const cmd = new Command('gateway')
    .description('run the MQTT gateway (aedes): validate telemetry, write it to the sinks, PUBACK after they have it')
    .option('--host <host>', 'listen address (default 127.0.0.1)')
    .option('--port <port>', 'MQTT port (default 1883, 0 = any free port)')
    .option('--data-dir <dir>', 'embedded stream and dead letters (default var/gateway)')
    .option('--stream-path <file>', 'embedded stream file (default DATA_DIR/stream.db)')
    .option('--max-payload-bytes <n>', 'larger payloads are acknowledged and dead-lettered, their first N bytes kept (default 262144)')
    .option('--max-batch-readings <n>', 'readings per telemetry batch at most; larger batches are dead-lettered (default 10000)')
    .option('--max-publishes-per-second <n>', 'per vehicle connection; beyond it PUBACKs wait, and a client that keeps on is cut off (default 100, 0 = no limit)')
    .option('--publish-burst <n>', 'publishes a vehicle may send at once before the rate applies (default 200)')
    .option('--max-connections <n>', 'connections at most, counting those not yet authenticated; beyond it CONNACK "server unavailable" (default 10000)')
    .option('--connect-timeout-ms <ms>', 'a connection that has not sent CONNECT (or finished its TLS handshake) by then is cut (default 5000)')
    .option('--max-clock-ahead-ms <ms>', 'readings stamped further ahead of the gateway clock are dead-lettered, a batch headTs beyond it replaced (default 300000)')
    .addOption(new Option('--auth <mode>', 'how vehicles prove their id: open (client id trusted, loopback only), password (fleet device add), mtls (client certificates, scripts/pki.sh) (default open)').choices(['open', 'password', 'mtls']))
    .option('--credentials-file <file>', 'password mode: hashed vehicle secrets (default DATA_DIR/devices.json), re-read when it changes')
    .option('--tls-cert <file>', 'mtls: the gateway certificate (PEM)')
    .option('--tls-key <file>', 'mtls: its private key (PEM)')
    .option('--tls-ca <file>', 'mtls: the fleet CA that signs vehicle certificates')
    .option('--tls-crl <file>', 'mtls: the CA\'s revocation list, re-read when it changes')
    .option('--service-host <host>', 'address of the plain listener for cloud services (default 127.0.0.1)')
    .option('--service-port <port>', 'plain listener for cloud services beside mqtts, -1 for none (default -1)')
    .option('--service-token <token>', 'password of the service MQTT users "dispatcher" and "console" (prefer FLEET_SERVICE_TOKEN)')
    .option('--dead-letter-max-bytes <n>', 'refused payloads kept in DATA_DIR/dead-letters.db at most; the oldest make room (default 268435456)')
    .option('--dead-letter-max-bytes-per-vehicle <n>', "one vehicle's share of them, at least 2 × max payload (default 16777216)")
    .option('--sinks <list>', 'comma-separated: embedded, kafka, kinesis, iot-core; PUBACK once all have a batch (default embedded)')
    .option('--kafka-brokers <list>', 'comma-separated host:port')
    .option('--kafka-topic <name>', 'telemetry topic, created at start if missing (default fleet.telemetry)')
    .option('--kafka-partitions <n>', 'partitions when the topic is created (default 6)')
    .option('--kinesis-stream <name>', 'telemetry stream, created at start if missing (default fleet.telemetry)')
    .option('--kinesis-shards <n>', 'shards when the stream is created (default 2)')
    .option('--aws-region <region>', 'AWS region (default eu-west-1)')
    .option('--aws-endpoint <url>', 'AWS endpoint override (an emulator)')
    .option('--iot-shadow-interval-ms <ms>', 'IoT Core shadow updates per vehicle at most this often (default 5000)');
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
  // The stream and the dead letters are vehicles' data: not for other users of the machine.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  if (config.serviceToken === DEV_SERVICE_TOKEN) log.warn('using the development service token; set FLEET_SERVICE_TOKEN in production');
  const gateway = new Gateway(gatewayOptions(config), createSinks(config, log), log);
  await gateway.start();
  return gateway;
}
