import { mkdirSync } from 'node:fs';
import { Command, Option } from 'commander';
import { createChannels } from '../../cloud/alerts/create-channels.js';
import { KafkaAlertStream } from '../../cloud/alerts/kafka-alert-stream.js';
import { Detector } from '../../cloud/detector.js';
import { detectorConfigSchema, loadRules, storePathOf, type DetectorConfig } from '../../cloud/detector-config.js';
import { createSource } from '../../cloud/sources/create-source.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { channelOptions, configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

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
    .option('--poll-interval-ms <ms>', 'idle poll interval of the stream (default 20)')
    .addOption(new Option('--dispatch <where>', 'here: send alerts to the channels; kafka: write them to fleet.alerts for `fleet dispatcher` (default here)').choices(['here', 'kafka']))
;
  return opsOptions(withConfig(channelOptions(cmd)), 9103).action((flags) =>
    runCommand(async () => {
      const config = configFrom(detectorConfigSchema, flags);
      const detector = await startDetector(config, createLogger('detector'));
      stopOnSignals([detector]);
    }),
  );
}

export async function startDetector(config: DetectorConfig, log: Logger): Promise<Detector> {
  const rules = loadRules(config);
  // Before anything is opened: a channel setting refused stops the detector with nothing left behind.
  const channels = config.dispatch === 'here' ? createChannels(config, `detector-${config.consumerGroup}-${process.pid}`, log) : [];
  mkdirSync(config.dataDir, { recursive: true });
  // Two windows back: the open window plus the one whose verdict may not have been committed.
  const source = createSource(config, 2 * rules.windowMs, log);
  const detector = new Detector(
    {
      storePath: storePathOf(config),
      pollIntervalMs: config.pollIntervalMs,
      pollMaxRecords: 1000,
      channels,
      alertStream: config.dispatch === 'kafka' ? new KafkaAlertStream({ brokers: config.kafkaBrokers, clientId: 'fleet-detector' }, log) : undefined,
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
