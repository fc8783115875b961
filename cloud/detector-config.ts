import { join } from 'node:path';
import { z } from 'zod';
import { int, parseFile } from '../shared/config.js';
import { DEFAULT_RULES, ruleSetSchema, type RuleSet } from '../shared/rules/rule-set.js';
import { DEV_SERVICE_TOKEN } from '../gateway/gateway-config.js';

export const detectorConfigSchema = z
  .object({
    dataDir: z.string().default('var/cloud'),
    /** The embedded stream the gateway writes. */
    streamPath: z.string().default('var/gateway/stream.db'),
    /** The operational store the console reads. */
    storePath: z.string().optional(),
    rulesFile: z.string().optional(),
    /** Override the rules file's window length. */
    windowMs: int().min(100).optional(),
    /** Override the rules file's freshness limit. */
    freshnessMs: int().min(0).optional(),
    consumerGroup: z.string().min(1).default('detector'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
    serviceToken: z.string().min(8).default(DEV_SERVICE_TOKEN),
    pollIntervalMs: int().min(1).max(10_000).default(20),
    /** Every alert is POSTed here as JSON (with an Idempotency-Key), when set. */
    webhookUrl: z.string().url().optional(),
    webhookToken: z.string().optional(),
    webhookTimeoutMs: int().min(100).default(5000),
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9103),
  })
  .strict();

export type DetectorConfig = z.infer<typeof detectorConfigSchema>;

export const storePathOf = (c: { dataDir: string; storePath?: string }) => c.storePath ?? join(c.dataDir, 'fleet.db');

export function loadRules(c: Pick<DetectorConfig, 'rulesFile' | 'windowMs' | 'freshnessMs'>): RuleSet {
  const rules = c.rulesFile ? parseFile(ruleSetSchema, c.rulesFile) : DEFAULT_RULES;
  return { ...rules, windowMs: c.windowMs ?? rules.windowMs, freshnessMs: c.freshnessMs ?? rules.freshnessMs };
}
