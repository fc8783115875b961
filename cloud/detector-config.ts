import { join } from 'node:path';
import { z } from 'zod';
import { int, list, parseFile } from '../shared/config.js';
import { STREAMS } from '../shared/contract/topics.js';
import { DEFAULT_RULES } from '../shared/rules/default-rules.js';
import { ruleSetSchema, type RuleSet } from '../shared/rules/rule-set.js';
import { channelSettings } from './alerts/create-channels.js';

export const detectorConfigSchema = z
  .object({
    dataDir: z.string().default('var/cloud'),
    /** Where telemetry comes from: the gateway's embedded stream, a Kafka topic or a Kinesis stream. */
    source: z.enum(['embedded', 'kafka', 'kinesis']).default('embedded'),
    /** The embedded stream the gateway writes. */
    streamPath: z.string().default('var/gateway/stream.db'),
    kafkaBrokers: list(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).default([]),
    kafkaTopic: z.string().min(1).default(STREAMS.telemetry),
    kinesisStream: z.string().min(1).default(STREAMS.telemetry),
    /** The operational store the console reads. */
    storePath: z.string().optional(),
    rulesFile: z.string().optional(),
    /** Override the rules file's window length. */
    windowMs: int().min(100).optional(),
    /** Override the rules file's freshness limit. */
    freshnessMs: int().min(0).optional(),
    consumerGroup: z.string().min(1).default('detector'),
    pollIntervalMs: int().min(1).max(10_000).default(20),
    /** `here`: this detector sends alerts to the channels itself; `kafka`: it writes them to fleet.alerts for `fleet dispatcher`. */
    dispatch: z.enum(['here', 'kafka']).default('here'),
    ...channelSettings,
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9103),
  })
  .strict()
  .refine((c) => (c.source !== 'kafka' && c.dispatch !== 'kafka') || c.kafkaBrokers.length > 0, {
    message: 'the kafka source and kafka dispatch need kafkaBrokers',
    path: ['kafkaBrokers'],
  });

export type DetectorConfig = z.infer<typeof detectorConfigSchema>;

export const storePathOf = (c: { dataDir: string; storePath?: string }) => c.storePath ?? join(c.dataDir, 'fleet.db');

export function loadRules(c: Pick<DetectorConfig, 'rulesFile' | 'windowMs' | 'freshnessMs'>): RuleSet {
  const rules = c.rulesFile ? parseFile(ruleSetSchema, c.rulesFile) : DEFAULT_RULES;
  return { ...rules, windowMs: c.windowMs ?? rules.windowMs, freshnessMs: c.freshnessMs ?? rules.freshnessMs };
}
