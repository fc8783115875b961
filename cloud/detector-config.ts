import { join } from 'node:path';
import { z } from 'zod';
import { int, parseFile } from '../shared/config.js';
import { OPS_PORTS, STORE_FILE } from '../shared/defaults.js';
import { kafkaReplicationFits, kafkaTopicSettings, opsSettings, storeSetting } from '../shared/settings.js';
import { DEFAULT_RULES } from '../shared/rules/default-rules.js';
import { ruleSetSchema, type RuleSet } from '../shared/rules/rule-set.js';
import { alertStreamSettings } from './alerts/create-alert-stream.js';
import { channelSettings } from './alerts/create-channels.js';
import { sourceSettings } from './sources/source-settings.js';

export const detectorConfigSchema = z
  .object({
    ...sourceSettings('detector'),
    // For the alert topic, which the detector creates when it dispatches over Kafka.
    ...kafkaTopicSettings,
    // The console reads the same store.
    store: storeSetting
      .optional()
      .meta({ description: 'operational store: a SQLite file or a postgres:// URL', defaultText: `DATA_DIR/${STORE_FILE}` }),
    // Latest values, alerts and the ledger are kept; only the readings themselves expire.
    readingsRetentionDays: int()
      .min(1)
      .max(36_500)
      .default(90)
      .describe('drop stored readings older than this many days of event time (on start, then hourly)'),
    rulesFile: z.string().optional().meta({ description: 'rules (JSON)', defaultText: 'built-in rules' }),
    windowMs: int().min(100).optional().meta({ description: 'window length', defaultText: "the rules file's" }),
    freshnessMs: int()
      .min(0)
      .optional()
      .meta({ description: 'alerts from windows older than this behind the vehicle are historical', defaultText: "the rules file's" }),
    consumerGroup: z
      .string()
      .min(1)
      .default('detector')
      .describe('consumer group / position name; detectors sharing it share the partitions'),
    pollIntervalMs: int().min(1).max(10_000).default(20).describe('idle poll interval of the stream'),
    dispatch: z
      .enum(['here', 'kafka', 'kinesis'])
      .default('here')
      .describe('here: send alerts to the channels; kafka or kinesis: write them to fleet.alerts on that stream for `fleet dispatcher`'),
    ...alertStreamSettings,
    ...channelSettings,
    ...opsSettings(OPS_PORTS.detector),
  })
  .strict()
  .refine((c) => (c.source !== 'kafka' && c.dispatch !== 'kafka') || c.kafkaBrokers.length > 0, {
    message: 'the kafka source and kafka dispatch need kafkaBrokers',
    path: ['kafkaBrokers'],
  })
  .refine(...kafkaReplicationFits);

export type DetectorConfig = z.infer<typeof detectorConfigSchema>;

export const storeOf = (c: { dataDir: string; store?: string }) => c.store ?? join(c.dataDir, STORE_FILE);

export function loadRules(c: Pick<DetectorConfig, 'rulesFile' | 'windowMs' | 'freshnessMs'>): RuleSet {
  const rules = c.rulesFile ? parseFile(ruleSetSchema, c.rulesFile) : DEFAULT_RULES;
  return { ...rules, windowMs: c.windowMs ?? rules.windowMs, freshnessMs: c.freshnessMs ?? rules.freshnessMs };
}
