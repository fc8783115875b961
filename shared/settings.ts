import { z } from 'zod';
import { int, list } from './config.js';
import { AWS_REGION, GATEWAY_URL, LOOPBACK_HOST } from './defaults.js';
import { gatewayUrlsProblem } from './gateway-urls.js';

/**
 * Settings that several commands have, declared once: a command's schema spreads or uses
 * these, and may give one its own `.describe()` text where it means something more there.
 */

/** The /healthz and /metrics endpoint of a long-running command. */
export const opsSettings = (port: number) => ({
  opsHost: z.string().default(LOOPBACK_HOST).describe('address of the /healthz and /metrics endpoint'),
  opsPort: int().min(-1).max(65535).default(port).describe('port of /healthz and /metrics (0 = any free port, -1 = off)'),
});

/** The gateways an agent or a service talks to: one URL, or several to fail over between. */
export const gatewayUrls = z
  .string()
  .default(GATEWAY_URL)
  .superRefine((value, ctx) => {
    const problem = gatewayUrlsProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  .describe('gateway URL, or several comma-separated to fail over between');

/** Bootstrap brokers; `min` 1 where a command cannot run without Kafka. */
export const kafkaBrokers = (min = 0) =>
  list(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port'), min).describe('comma-separated host:port of the Kafka cluster');

/**
 * How the Kafka topics a command creates are replicated (an existing topic is used as it is).
 * The defaults work on one broker; a production cluster wants 3 and 2: a PUBACK then means
 * two brokers have the batch, and one broker may fail without stopping writes.
 */
export const kafkaTopicSettings = {
  kafkaReplicationFactor: int()
    .min(1)
    .max(32_767)
    .default(1)
    .describe('copies of each partition, on as many brokers, when a topic is created (3 on a production cluster)'),
  kafkaMinInsyncReplicas: int()
    .min(1)
    .max(32_767)
    .default(1)
    .describe(
      'min.insync.replicas of a created topic: a write is acknowledged (and a PUBACK sent) only once this many replicas have it, and refused while fewer are in sync',
    ),
};

/** For a schema's `.refine(...)`: min.insync.replicas above the replication factor would refuse every write. */
export const kafkaReplicationFits: [
  (c: { kafkaReplicationFactor: number; kafkaMinInsyncReplicas: number }) => boolean,
  { message: string; path: string[] },
] = [
  (c) => c.kafkaMinInsyncReplicas <= c.kafkaReplicationFactor,
  { message: 'must not exceed kafkaReplicationFactor: no write could be acknowledged', path: ['kafkaMinInsyncReplicas'] },
];

export const awsSettings = {
  awsRegion: z.string().default(AWS_REGION).describe('AWS region'),
  awsEndpoint: z.string().url().optional().describe('AWS endpoint override (an emulator)'),
};

/**
 * The cloud's operational store: a SQLite file (one machine), or a `postgres://` URL that
 * detectors, dispatchers and consoles on several hosts share.
 */
export const storeSetting = z
  .string()
  .min(1)
  .refine((s) => !/^postgres(ql)?:/i.test(s) || (URL.canParse(s) && new URL(s).hostname !== ''), {
    message: 'a PostgreSQL store must be a URL with a host, such as postgres://user:password@host:5432/fleet',
  });
