import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { AlertDispatcher } from '../../cloud/alerts/alert-dispatcher.js';
import { channelSettings, createChannels } from '../../cloud/alerts/create-channels.js';
import { KafkaAlertStream } from '../../cloud/alerts/kafka-alert-stream.js';
import { FleetStore } from '../../cloud/store.js';
import { int, list } from '../../shared/config.js';
import { STREAMS } from '../../shared/contract/topics.js';
import { createLogger } from '../../shared/log.js';
import { createRegistry, startOpsServer } from '../../shared/ops-server.js';
import { channelOptions, configFrom, opsOptions, runCommand, stopOnSignals, withConfig } from '../cli-support.js';

const dispatcherConfigSchema = z
  .object({
    kafkaBrokers: list(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port'), 1),
    alertsTopic: z.string().min(1).default(STREAMS.alerts),
    consumerGroup: z.string().min(1).default('dispatcher'),
    /** The delivery ledger: which alert went to which channel. */
    dataDir: z.string().default('var/dispatcher'),
    /** As the detector's rules: the cab is given an alert only this long after its window closed. */
    freshnessMs: int().min(0).default(60_000),
    ...channelSettings,
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9105),
  })
  .strict();

export function dispatcherCommand(): Command {
  const cmd = new Command('dispatcher')
    .description('consume fleet.alerts and tell the driver, a webhook and an SNS topic, each at most once per alert')
    .option('--kafka-brokers <list>', 'comma-separated host:port of the Kafka cluster carrying fleet.alerts')
    .option('--alerts-topic <name>', 'alert topic (default fleet.alerts)')
    .option('--consumer-group <name>', 'dispatchers sharing it share the partitions (default dispatcher)')
    .option('--data-dir <dir>', 'delivery ledger directory (default var/dispatcher)')
    .option('--freshness-ms <ms>', "the detector's freshness limit: an alert the cab has not acknowledged by then is recorded as expired (default 60000)");
  return opsOptions(withConfig(channelOptions(cmd)), 9105).action((flags) =>
    runCommand(async () => {
      const c = configFrom(dispatcherConfigSchema, flags);
      const log = createLogger('dispatcher');
      const registry = createRegistry('dispatcher');
      const channels = createChannels(c, `dispatcher-${c.consumerGroup}-${process.pid}`, log);
      mkdirSync(c.dataDir, { recursive: true });
      const ledger = new FleetStore(join(c.dataDir, 'ledger.db'));
      const dispatcher = new AlertDispatcher(ledger, channels, log, registry, { freshnessMs: c.freshnessMs });
      const stream = new KafkaAlertStream({ brokers: c.kafkaBrokers, topic: c.alertsTopic, clientId: 'fleet-dispatcher' }, log);
      const ops = c.opsPort >= 0 ? await startOpsServer(c.opsHost, c.opsPort, registry, () => ({ ok: true }), log) : undefined;
      // Stopped in reverse: no new events first, then the deliveries under way, then the ledger.
      stopOnSignals([{ stop: async () => (ops?.close(), ledger.close()) }, dispatcher, { stop: () => stream.close() }]);
      await stream.start();
      dispatcher.start();
      await stream.consume(c.consumerGroup, async (events) => {
        ledger.transaction(() => ledger.applyAlertEvents(events, Date.now()));
        dispatcher.kick();
      });
      log.info({ topic: c.alertsTopic, group: c.consumerGroup }, 'dispatcher running');
    }),
  );
}
