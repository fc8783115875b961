import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { bool, int, list } from '../shared/config.js';
import { MAX_BATCH_READINGS } from '../shared/contract/batch.js';
import { DEFAULT_CLOCK_AHEAD_MS, MAX_CLOCK_AHEAD_MS } from '../shared/contract/validate.js';
import { STREAMS } from '../shared/contract/topics.js';
import { DATA_DIRS, LOOPBACK_HOST, MQTT_PORT, OPS_PORTS, STREAM_FILE } from '../shared/defaults.js';
import { awsSettings, kafkaBrokers, kafkaReplicationFits, kafkaTopicSettings, opsSettings } from '../shared/settings.js';
import { DEV_SERVICE_TOKEN, serviceTokenSetting } from '../shared/service-token.js';
import { AUTH_MODES } from './authenticator.js';
import type { GatewayOptions } from './gateway.js';

export const SINK_KINDS = ['embedded', 'kafka', 'kinesis', 'iot-core'] as const;

/** Hashed vehicle secrets (`fleet device add`), in the gateway's data directory unless set. */
const CREDENTIALS_FILE = 'devices.json';
const MAX_WORKERS = 256;

export const gatewayConfigSchema = z
  .object({
    host: z.string().default(LOOPBACK_HOST).describe('listen address'),
    port: int().min(0).max(65535).default(MQTT_PORT).describe('MQTT port (0 = any free port)'),
    dataDir: z
      .string()
      .default(DATA_DIRS.gateway)
      .describe("the gateway's data directory: embedded stream, dead letters, vehicle credentials"),
    // The detector reads the same file.
    streamPath: z
      .string()
      .optional()
      .meta({ description: 'embedded stream file', defaultText: `DATA_DIR/${STREAM_FILE}` }),
    maxPayloadBytes: int()
      .min(256)
      .max(64 * 1024 * 1024)
      .default(256 * 1024)
      .describe('larger payloads are acknowledged and dead-lettered, their first N bytes kept'),
    maxBatchReadings: int()
      .min(1)
      .max(MAX_BATCH_READINGS)
      .default(MAX_BATCH_READINGS)
      .describe('readings per telemetry batch at most; larger batches are dead-lettered'),
    // As AWS IoT Core's per-connection limit.
    maxPublishesPerSecond: int()
      .min(0)
      .default(100)
      .describe('per vehicle connection; beyond it PUBACKs wait, and a client that keeps on is cut off (0 = no limit)'),
    publishBurst: int().min(1).default(200).describe('publishes a vehicle may send at once before the rate applies'),
    maxConnections: int()
      .min(1)
      .default(10_000)
      .describe('connections at most, counting those not yet authenticated; beyond it CONNACK "server unavailable"'),
    connectTimeoutMs: int()
      .min(100)
      .max(120_000)
      .default(5000)
      .describe('a connection that has not sent CONNECT (or finished its TLS handshake) by then is cut'),
    maxClockAheadMs: int()
      .min(1000)
      .max(MAX_CLOCK_AHEAD_MS)
      .default(DEFAULT_CLOCK_AHEAD_MS)
      .describe('readings stamped further ahead of the gateway clock are dead-lettered, a batch headTs beyond it replaced'),
    // `open` trusts the client id: only allowed on loopback (see the refinements below).
    auth: z
      .enum(AUTH_MODES)
      .default('open')
      .describe(
        'how vehicles prove their id: open (client id trusted, loopback only), password (fleet device add), mtls (client certificates, scripts/pki.sh)',
      ),
    credentialsFile: z
      .string()
      .optional()
      .meta({ description: 'password mode: hashed vehicle secrets, re-read when it changes', defaultText: `DATA_DIR/${CREDENTIALS_FILE}` }),
    tlsCert: z.string().optional().describe('mtls: the gateway certificate (PEM)'),
    tlsKey: z.string().optional().describe('mtls: its private key (PEM)'),
    tlsCa: z.string().optional().describe('mtls: the fleet CA that signs vehicle certificates'),
    tlsCrl: z.string().optional().describe("mtls: the CA's revocation list, re-read when it changes"),
    serviceHost: z.string().default(LOOPBACK_HOST).describe('address of the plain listener for cloud services'),
    servicePort: int().min(-1).max(65535).default(-1).describe('plain listener for cloud services beside mqtts, -1 for none'),
    serviceToken: serviceTokenSetting.describe('password of the service MQTT users "dispatcher" and "console"'),
    deadLetterMaxBytes: int()
      .min(64 * 1024)
      .default(256 * 1024 * 1024)
      .describe('refused payloads kept in DATA_DIR/dead-letters.db at most; the oldest make room'),
    deadLetterMaxBytesPerVehicle: int()
      .min(1024)
      .default(16 * 1024 * 1024)
      .describe("one vehicle's share of them, at least 2 × max payload"),
    sinks: list(z.enum(SINK_KINDS), 1).default(['embedded']).describe('comma-separated; the PUBACK waits until all have a batch'),
    kafkaBrokers: kafkaBrokers().default([]),
    kafkaTopic: z.string().min(1).default(STREAMS.telemetry).describe('telemetry topic, created at start if missing'),
    kafkaPartitions: int().min(1).max(10_000).default(6).describe('partitions when the topic is created'),
    ...kafkaTopicSettings,
    kafkaCompression: z
      .enum(['none', 'gzip'])
      .default('gzip')
      .describe('compression of produce requests, where it makes them smaller (several records, or one of at least 256 bytes)'),
    kinesisStream: z.string().min(1).default(STREAMS.telemetry).describe('telemetry stream, created at start if missing'),
    kinesisShards: int().min(1).max(10_000).default(2).describe('shards when the stream is created'),
    ...awsSettings,
    iotShadowIntervalMs: int().min(100).default(5000).describe("a vehicle's IoT Core shadow is updated at most this often"),
    sinkRetryBaseMs: int()
      .min(1)
      .default(200)
      .describe('first retry delay of a batch a sink refused; doubles with jitter while the PUBACK waits'),
    sinkRetryMaxMs: int().min(10).default(10_000).describe('longest retry delay of a batch a sink refused'),
    // Nothing is stored there: any Redis, restarted at will, does (gateway/README.md).
    clusterRedisUrl: z
      .string()
      .regex(/^rediss?:\/\/[^\s]+$/, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe(
        'Redis linking the gateways of a cluster: vehicle status, alerts and acknowledgements reach every gateway, and a vehicle taken over by another gateway has its old session closed (none: this gateway alone)',
      ),
    gatewayId: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ . -')
      .optional()
      .meta({
        description: 'name of this gateway in the cluster and its logs, unique in the cluster',
        defaultText: 'HOSTNAME-RANDOM, new at each start',
      }),
    reusePort: bool()
      .default(false)
      .describe(
        'share the MQTT and service ports with other gateway processes on this host (Linux SO_REUSEPORT): the kernel spreads new connections over them',
      ),
    workers: int()
      .min(1)
      .max(MAX_WORKERS)
      .default(1)
      .describe(
        'gateway processes sharing the MQTT and service ports (SO_REUSEPORT), one per core to use: restarted when one dies, their health and metrics summed on the one ops port; more than 1 needs clusterRedisUrl',
      ),
    ...opsSettings(OPS_PORTS.gateway),
  })
  .strict()
  // An alert published on one worker must reach a cab connected to another: the workers are a cluster.
  .refine((c) => c.workers <= 1 || c.clusterRedisUrl !== undefined, {
    message: 'more than one worker needs clusterRedisUrl: an alert published through one worker must reach a cab connected to another',
    path: ['workers'],
  })
  .refine((c) => !c.sinks.includes('kafka') || c.kafkaBrokers.length > 0, {
    message: 'the kafka sink needs kafkaBrokers',
    path: ['kafkaBrokers'],
  })
  .refine(...kafkaReplicationFits)
  .refine((c) => c.auth !== 'open' || LOOPBACK.has(c.host), {
    message: 'open auth trusts any client id, so it only listens on loopback; use password or mtls to listen on other addresses',
    path: ['auth'],
  })
  .refine((c) => c.auth !== 'mtls' || (c.tlsCert && c.tlsKey && c.tlsCa), {
    message: 'mtls needs tlsCert, tlsKey and tlsCa',
    path: ['auth'],
  })
  .refine((c) => c.serviceToken !== DEV_SERVICE_TOKEN || (LOOPBACK.has(c.host) && (c.servicePort < 0 || LOOPBACK.has(c.serviceHost))), {
    message:
      'the development service token is public, so it is only allowed while the gateway listens on loopback; set FLEET_SERVICE_TOKEN (or --service-token) to a secret of your own',
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

const LOOPBACK = new Set([LOOPBACK_HOST, '::1', 'localhost']);

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const streamPathOf = (c: { dataDir: string; streamPath?: string }) => c.streamPath ?? join(c.dataDir, STREAM_FILE);
export const credentialsPathOf = (c: { dataDir: string; credentialsFile?: string }) =>
  c.credentialsFile ?? join(c.dataDir, CREDENTIALS_FILE);

/**
 * A new name at each start unless one is set: aedes on other gateways remembers the last
 * message counter it saw from each name, and would take a restarted gateway's messages,
 * counted from 1 again, for repeats.
 */
const defaultGatewayId = () =>
  `${hostname()
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 48)}-${randomBytes(4).toString('hex')}`;

export function gatewayOptions(c: GatewayConfig): GatewayOptions {
  return {
    ...c,
    gatewayId: c.gatewayId ?? defaultGatewayId(),
    credentialsPath: credentialsPathOf(c),
    tls: c.auth === 'mtls' ? { cert: c.tlsCert!, key: c.tlsKey!, ca: c.tlsCa!, crl: c.tlsCrl } : undefined,
    deadLetterPath: join(c.dataDir, 'dead-letters.db'),
  };
}
