import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { AlertDispatcher } from '../../cloud/alerts/alert-dispatcher.js';
import { channelSettings, createChannels } from '../../cloud/alerts/create-channels.js';
import { ALERT_STREAM_KINDS, alertStreamSettings, createAlertStream } from '../../cloud/alerts/create-alert-stream.js';
import { openStore } from '../../cloud/store/open-store.js';
import { int } from '../../shared/config.js';
import { DATA_DIRS, OPS_PORTS } from '../../shared/defaults.js';
import { kafkaBrokers, kafkaReplicationFits, kafkaTopicSettings, opsSettings, storeSetting } from '../../shared/settings.js';
import { createLogger } from '../../shared/log.js';
import { createRegistry, startOpsServer } from '../../shared/ops-server.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export const dispatcherConfigSchema = z
  .object({
    stream: z.enum(ALERT_STREAM_KINDS).default('kafka').describe("where fleet.alerts is: the detector's --dispatch"),
    kafkaBrokers: kafkaBrokers().default([]).describe('comma-separated host:port of the Kafka cluster carrying fleet.alerts'),
    ...kafkaTopicSettings,
    ...alertStreamSettings,
    consumerGroup: z
      .string()
      .min(1)
      .default('dispatcher')
      .describe('Kafka: dispatchers sharing it share the partitions; Kinesis: names the checkpoint file (one dispatcher per stream)'),
    dataDir: z.string().default(DATA_DIRS.dispatcher).describe('delivery ledger directory: which alert went to which channel'),
    store: storeSetting.optional().meta({
      description: "delivery ledger: a SQLite file, or the detector's postgres:// store (the console then shows the cab's deliveries)",
      defaultText: 'DATA_DIR/ledger.db',
    }),
    // As the detector's rules: the cab is given an alert only this long after its window closed.
    freshnessMs: int()
      .min(0)
      .default(60_000)
      .describe("the detector's freshness limit: an alert the cab has not acknowledged by then is recorded as expired"),
    ...channelSettings,
    ...opsSettings(OPS_PORTS.dispatcher),
  })
  .strict()
  .refine((c) => c.stream !== 'kafka' || c.kafkaBrokers.length > 0, {
    message: 'the kafka alert stream needs kafkaBrokers',
    path: ['kafkaBrokers'],
  })
  .refine(...kafkaReplicationFits);

export function dispatcherCommand(): Command {
  const cmd = describedCommand('dispatcher');
  return withSettings(cmd, dispatcherConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const c = configFrom(dispatcherConfigSchema, flags);
      const log = createLogger('dispatcher');
      const registry = createRegistry('dispatcher');
      const channels = createChannels(c, `dispatcher-${c.consumerGroup}-${process.pid}`, log);
      mkdirSync(c.dataDir, { recursive: true });
      const ledger = openStore(c.store ?? join(c.dataDir, 'ledger.db'), log);
      await ledger.open();
      const dispatcher = new AlertDispatcher(ledger.deliveries, channels, log, registry, { freshnessMs: c.freshnessMs });
      const stream = createAlertStream(c.stream, c, 'fleet-dispatcher', log, { group: c.consumerGroup, dataDir: c.dataDir });
      const ops =
        c.opsPort >= 0 ? await startOpsServer(c.opsHost, c.opsPort, registry, () => ({ ...dispatcher.health() }), log) : undefined;
      // Stopped in reverse: no new events first, then the deliveries under way, then the ledger.
      stopOnSignals([{ stop: async () => (ops?.close(), await ledger.close()) }, dispatcher, { stop: () => stream.close() }]);
      await stream.start();
      dispatcher.start();
      await stream.consume(async (events) => {
        await ledger.write({ received: [], duplicates: 0, events, at: Date.now() });
        dispatcher.kick();
      });
      const from = c.stream === 'kafka' ? { topic: c.alertsTopic } : { kinesisStream: c.alertsStream };
      log.info({ stream: c.stream, ...from, group: c.consumerGroup }, 'dispatcher running');
    }),
  );
}
