import { mkdirSync } from 'node:fs';
import { Command } from 'commander';
import type { AlertChannel } from '../../cloud/alerts/alert-channel.js';
import { DriverChannel } from '../../cloud/alerts/channels/driver-channel.js';
import { WebhookChannel } from '../../cloud/alerts/channels/webhook-channel.js';
import { Detector } from '../../cloud/detector.js';
import { detectorConfigSchema, loadRules, storePathOf, type DetectorConfig } from '../../cloud/detector-config.js';
import { EmbeddedSource } from '../../cloud/sources/embedded-source.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

export function detectorCommand(): Command {
  const cmd = new Command('detector')
    .description('run the windowed anomaly detector: read the stream, evaluate rules in event time, raise and dispatch alerts')
    .option('--data-dir <dir>', 'operational store directory (default var/cloud)')
    .option('--stream-path <file>', 'embedded stream written by the gateway (default var/gateway/stream.db)')
    .option('--store-path <file>', 'operational store (default DATA_DIR/fleet.db)')
    .option('--rules-file <file>', 'rules (JSON); built-in defaults when absent')
    .option('--window-ms <ms>', 'window length, overriding the rules file')
    .option('--freshness-ms <ms>', 'alerts from windows older than this behind the vehicle are historical')
    .option('--consumer-group <name>', 'stream position name (default detector)')
    .option('--mqtt-url <url>', 'gateway URL for driver alerts (default mqtt://127.0.0.1:1883)')
    .option('--service-token <token>', 'gateway service password (prefer FLEET_SERVICE_TOKEN)')
    .option('--poll-interval-ms <ms>', 'idle poll interval of the stream (default 20)')
    .option('--webhook-url <url>', 'also POST every alert here as JSON')
    .option('--webhook-token <token>', 'bearer token for the webhook (prefer FLEET_WEBHOOK_TOKEN)');
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
  return channels;
}

export async function startDetector(config: DetectorConfig, log: Logger): Promise<Detector> {
  mkdirSync(config.dataDir, { recursive: true });
  const rules = loadRules(config);
  // Two windows back: the open window plus the one whose verdict may not have been committed.
  const source = new EmbeddedSource(config.streamPath, config.consumerGroup, 2 * rules.windowMs);
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
