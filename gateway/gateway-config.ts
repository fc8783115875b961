import { join } from 'node:path';
import { z } from 'zod';
import { int, list } from '../shared/config.js';
import { MAX_BATCH_READINGS } from '../shared/contract/batch.js';
import { DEFAULT_CLOCK_AHEAD_MS, MAX_CLOCK_AHEAD_MS } from '../shared/contract/validate.js';
import { STREAMS } from '../shared/contract/topics.js';
import { DEV_SERVICE_TOKEN } from '../shared/service-token.js';
import { AUTH_MODES } from './authenticator.js';
import type { GatewayOptions } from './gateway.js';

export const SINK_KINDS = ['embedded', 'kafka', 'kinesis', 'iot-core'] as const;

export const gatewayConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: int().min(0).max(65535).default(1883),
    dataDir: z.string().default('var/gateway'),
    /** The embedded stream file; the detector reads the same file. */
    streamPath: z.string().optional(),
    maxPayloadBytes: int().min(256).max(64 * 1024 * 1024).default(256 * 1024),
    maxBatchReadings: int().min(1).max(MAX_BATCH_READINGS).default(MAX_BATCH_READINGS),
    /** Per client; as AWS IoT Core's per-connection limit. 0 turns it off. */
    maxPublishesPerSecond: int().min(0).default(100),
    publishBurst: int().min(1).default(200),
    /** Counting connections not yet authenticated. */
    maxConnections: int().min(1).default(10_000),
    /** A connection that has not sent its CONNECT (or finished its TLS handshake) by then is cut. */
    connectTimeoutMs: int().min(100).max(120_000).default(5000),
    /** Readings stamped further ahead of the gateway's clock are refused (dead-lettered), a headTs beyond it replaced. */
    maxClockAheadMs: int().min(1000).max(MAX_CLOCK_AHEAD_MS).default(DEFAULT_CLOCK_AHEAD_MS),
    /** How vehicles prove their identity; `open` trusts the client id and is only allowed on loopback. */
    auth: z.enum(AUTH_MODES).default('open'),
    /** Hashed per-vehicle secrets for `password` mode (`fleet device add`); default DATA_DIR/devices.json. */
    credentialsFile: z.string().optional(),
    /** mtls: the gateway's certificate and key, the fleet CA, and its revocation list (scripts/pki.sh). */
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    tlsCa: z.string().optional(),
    tlsCrl: z.string().optional(),
    /** A plain listener for cloud services beside mqtts; -1 for none. */
    serviceHost: z.string().default('127.0.0.1'),
    servicePort: int().min(-1).max(65535).default(-1),
    serviceToken: z.string().min(8).default(DEV_SERVICE_TOKEN),
    /** Refused payloads kept (dead letters), in bytes; the oldest make room. One vehicle may fill only its share. */
    deadLetterMaxBytes: int().min(64 * 1024).default(256 * 1024 * 1024),
    deadLetterMaxBytesPerVehicle: int().min(1024).default(16 * 1024 * 1024),
    /** Every batch goes to all of these before the PUBACK. */
    sinks: list(z.enum(SINK_KINDS), 1).default(['embedded']),
    kafkaBrokers: list(z.string().regex(/^[^:\s]+:\d+$/, 'must be host:port')).default([]),
    kafkaTopic: z.string().min(1).default(STREAMS.telemetry),
    kafkaPartitions: int().min(1).max(10_000).default(6),
    kafkaCompression: z.enum(['none', 'gzip']).default('gzip'),
    kinesisStream: z.string().min(1).default(STREAMS.telemetry),
    kinesisShards: int().min(1).max(10_000).default(2),
    awsRegion: z.string().default('eu-west-1'),
    /** An AWS endpoint override, e.g. an emulator. */
    awsEndpoint: z.string().url().optional(),
    /** A vehicle's IoT Core shadow is updated at most this often. */
    iotShadowIntervalMs: int().min(100).default(5000),
    sinkRetryBaseMs: int().min(1).default(200),
    sinkRetryMaxMs: int().min(10).default(10_000),
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9102),
  })
  .strict()
  .refine((c) => !c.sinks.includes('kafka') || c.kafkaBrokers.length > 0, { message: 'the kafka sink needs kafkaBrokers', path: ['kafkaBrokers'] })
  .refine((c) => c.auth !== 'open' || LOOPBACK.has(c.host), {
    message: 'open auth trusts any client id, so it only listens on loopback; use password or mtls to listen on other addresses',
    path: ['auth'],
  })
  .refine((c) => c.auth !== 'mtls' || (c.tlsCert && c.tlsKey && c.tlsCa), { message: 'mtls needs tlsCert, tlsKey and tlsCa', path: ['auth'] })
  .refine((c) => c.serviceToken !== DEV_SERVICE_TOKEN || (LOOPBACK.has(c.host) && (c.servicePort < 0 || LOOPBACK.has(c.serviceHost))), {
    message: 'the development service token is public, so it is only allowed while the gateway listens on loopback; set FLEET_SERVICE_TOKEN (or --service-token) to a secret of your own',
    path: ['serviceToken'],
  })
  .refine((c) => c.deadLetterMaxBytesPerVehicle >= 2 * c.maxPayloadBytes, {
    message: 'must hold at least two of the largest payloads (2 × maxPayloadBytes)',
    path: ['deadLetterMaxBytesPerVehicle'],
  })
  .refine((c) => c.deadLetterMaxBytes >= c.deadLetterMaxBytesPerVehicle, {
    message: 'must be at least deadLetterMaxBytesPerVehicle',
    path: ['deadLetterMaxBytes'],
  });

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const streamPathOf = (c: { dataDir: string; streamPath?: string }) => c.streamPath ?? join(c.dataDir, 'stream.db');

export function gatewayOptions(c: GatewayConfig): GatewayOptions {
  return {
    host: c.host,
    port: c.port,
    maxPayloadBytes: c.maxPayloadBytes,
    maxBatchReadings: c.maxBatchReadings,
    maxPublishesPerSecond: c.maxPublishesPerSecond,
    publishBurst: c.publishBurst,
    maxConnections: c.maxConnections,
    connectTimeoutMs: c.connectTimeoutMs,
    maxClockAheadMs: c.maxClockAheadMs,
    auth: c.auth,
    credentialsPath: c.credentialsFile ?? join(c.dataDir, 'devices.json'),
    tls: c.auth === 'mtls' ? { cert: c.tlsCert!, key: c.tlsKey!, ca: c.tlsCa!, crl: c.tlsCrl } : undefined,
    serviceHost: c.serviceHost,
    servicePort: c.servicePort,
    serviceToken: c.serviceToken,
    deadLetterPath: join(c.dataDir, 'dead-letters.db'),
    deadLetterMaxBytes: c.deadLetterMaxBytes,
    deadLetterMaxBytesPerVehicle: c.deadLetterMaxBytesPerVehicle,
    sinkRetryBaseMs: c.sinkRetryBaseMs,
    sinkRetryMaxMs: c.sinkRetryMaxMs,
    opsHost: c.opsHost,
    opsPort: c.opsPort,
  };
}
