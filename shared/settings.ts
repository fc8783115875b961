import { z } from 'zod';
import { int, list } from './config.js';
import { AWS_REGION, GATEWAY_URL, LOOPBACK_HOST } from './defaults.js';

/**
 * Settings that several commands have, declared once: a command's schema spreads or uses
 * these, and may give one its own `.describe()` text where it means something more there.
 */

/** The /healthz and /metrics endpoint of a long-running command. */
export const opsSettings = (port: number) => ({
  opsHost: z.string().default(LOOPBACK_HOST).describe('address of the /healthz and /metrics endpoint'),
  opsPort: int().min(-1).max(65535).default(port).describe('port of /healthz and /metrics (0 = any free port, -1 = off)'),
});

export const gatewayUrl = z.string().url().default(GATEWAY_URL).describe('gateway URL');

/** Bootstrap brokers; `min` 1 where a command cannot run without Kafka. */
export const kafkaBrokers = (min = 0) =>
  list(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port'), min).describe('comma-separated host:port of the Kafka cluster');

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
