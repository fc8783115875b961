import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { createChannels } from '../../cloud/alerts/create-channels.js';
import { createAlertStream } from '../../cloud/alerts/create-alert-stream.js';
import { Detector } from '../../cloud/detector.js';
import { detectorConfigSchema, loadRules, storeOf, type DetectorConfig } from '../../cloud/detector-config.js';
import { openStore } from '../../cloud/store/open-store.js';
import { createSource } from '../../cloud/sources/create-source.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { createRegistry } from '../../shared/ops-server.js';
import { configFrom, runCommand, stopOnSignals, withSettings } from '../cli-support.js';
import { describedCommand } from '../command-list.js';

export function detectorCommand(): Command {
  const cmd = describedCommand('detector');
  return withSettings(cmd, detectorConfigSchema).action((flags: Record<string, unknown>) =>
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
  const registry = createRegistry('detector');
  const source = createSource(config, { rebuildMs: 2 * rules.windowMs }, log, registry);
  const detector = new Detector(
    {
      store: openStore(storeOf(config), log),
      pollIntervalMs: config.pollIntervalMs,
      readingsRetentionDays: config.readingsRetentionDays,
      pollMaxRecords: 1000,
      channels,
      alertStream: config.dispatch === 'here' ? undefined : createAlertStream(config.dispatch, config, 'fleet-detector', log),
      opsHost: config.opsHost,
      opsPort: config.opsPort,
    },
    rules,
    source,
    log,
    registry,
  );
  await detector.start();
  return detector;
}
