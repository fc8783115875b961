import { mkdirSync } from 'node:fs';
import { Command, Option } from 'commander';
import type { AlertChannel } from '../../cloud/alerts/alert-channel.js';
import { DriverChannel } from '../../cloud/alerts/channels/driver-channel.js';
import { SnsChannel } from '../../cloud/alerts/channels/sns-channel.js';
import { WebhookChannel } from '../../cloud/alerts/channels/webhook-channel.js';
import { Detector } from '../../cloud/detector.js';
import { detectorConfigSchema, loadRules, storePathOf, type DetectorConfig } from '../../cloud/detector-config.js';
import { createSource } from '../../cloud/sources/create-source.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function detectorCommand(): Command {
  const cmd = new Command('detector')
    .description('run the windowed anomaly detector: read the stream, evaluate rules in event time, raise and dispatch alerts')
    .option('--data-dir <dir>', 'operational store directory (default var/cloud)')
    .addOption(new Option('--source <kind>', 'where telemetry comes from (default embedded)').choices(['embedded', 'kafka', 'kinesis']))
    .option('--stream-path <file>', 'embedded stream written by the gateway (default var/gateway/stream.db)')
    .option('--kafka-brokers <list>', 'comma-separated host:port')
    .option('--kafka-topic <name>', 'telemetry topic (default fleet.telemetry)')
    .option('--kinesis-stream <name>', 'telemetry stream (default fleet.telemetry)')
    .option('--store-path <file>', 'operational store (default DATA_DIR/fleet.db)')
    .option('--rules-file <file>', 'rules (JSON); built-in defaults when absent')
    .option('--window-ms <ms>', 'window length, overriding the rules file')
    .option('--freshness-ms <ms>', 'alerts from windows older than this behind the vehicle are historical')
    .option('--consumer-group <name>', 'consumer group / position name; detectors sharing it share the partitions (default detector)')
    .option('--mqtt-url <url>', 'gateway URL for driver alerts (default mqtt://127.0.0.1:1883)')
    .option('--service-token <token>', 'gateway service password (prefer FLEET_SERVICE_TOKEN)')
    .option('--poll-interval-ms <ms>', 'idle poll interval of the stream (default 20)')
    .option('--webhook-url <url>', 'also POST every alert here as JSON')
    .option('--webhook-token <token>', 'bearer token for the webhook (prefer FLEET_WEBHOOK_TOKEN)')
    .option('--sns-topic-arn <arn>', 'also publish every alert to this SNS topic')
    .option('--aws-region <region>', 'AWS region (default eu-west-1)')
    .option('--aws-endpoint <url>', 'AWS endpoint override (an emulator)');
  return opsOptions(withConfig(cmd), 9103).action((flags) =>
    runCommand(async () => {
      const config = configFrom(detectorConfigSchema, flags);
      const detector = await startDetector(config, createLogger('detector'));
      stopOnSignals([detector]);
    }),
  );
}

function alertChannels(config: DetectorConfig, log: Logger): AlertChannel[] {
  const channels: AlertChannel[] = [
    new DriverChannel({ mqttUrl: config.mqttUrl, serviceToken: config.serviceToken, clientId: `detector-${config.consumerGroup}-${process.pid}` }, log),
  ];
  if (config.webhookUrl) channels.push(new WebhookChannel({ url: config.webhookUrl, token: config.webhookToken, timeoutMs: config.webhookTimeoutMs }));
  if (config.snsTopicArn) channels.push(new SnsChannel({ topicArn: config.snsTopicArn, region: config.awsRegion, endpoint: config.awsEndpoint }));
  return channels;
}

export async function startDetector(config: DetectorConfig, log: Logger): Promise<Detector> {
  mkdirSync(config.dataDir, { recursive: true });
  const rules = loadRules(config);
  // Two windows back: the open window plus the one whose verdict may not have been committed.
  const source = createSource(config, 2 * rules.windowMs, log);
  const detector = new Detector(
    {
      storePath: storePathOf(config),
      pollIntervalMs: config.pollIntervalMs,
      pollMaxRecords: 1000,
      channels: alertChannels(config, log),
      opsHost: config.opsHost,
      opsPort: config.opsPort,
    },
    rules,
    source,
    log,
  );
  await detector.start();
  return detector;
}
