import { join } from 'node:path';
import { z } from 'zod';
import { bool, int, list, parseFile, readSettingFile } from '../shared/config.js';
import { DEFAULT_RULES } from '../shared/rules/default-rules.js';
import { ruleSetSchema } from '../shared/rules/rule-set.js';
import { SENSORS, VEHICLE_ID } from '../shared/contract/reading.js';
import { FAULT_KINDS } from '../shared/fault-kinds.js';
import type { AgentOptions } from './agent.js';

const fault = z
  .object({
    kind: z.enum(FAULT_KINDS),
    sensor: z.enum(SENSORS).optional(),
    /** Seconds after the agent starts. */
    fromS: z.number().min(0),
    toS: z.number().min(0).optional(),
  })
  .strict();

export const agentConfigSchema = z
  .object({
    vehicle: z.string().regex(VEHICLE_ID, 'must be 1-64 characters of A-Z a-z 0-9 _ -'),
    mqttUrl: z.string().url().default('mqtt://127.0.0.1:1883'),
    username: z.string().optional(),
    password: z.string().optional(),
    /** For an mqtts:// gateway in mtls mode: this vehicle's certificate and key (scripts/pki.sh enroll) and the fleet CA. */
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    tlsCa: z.string().optional(),
    dataDir: z.string().default('var/agent'),
    bufferMaxBytes: int().min(64 * 1024).default(256 * 1024 * 1024),
    /** Samples held in memory while the disk refuses writes: ~10 MB; at the default rates over an hour and a half. */
    memoryBufferMaxReadings: int().min(1).max(10_000_000).default(50_000),
    synchronous: z.enum(['FULL', 'NORMAL']).default('FULL'),
    commitIntervalMs: int().min(1).max(10_000).default(50),
    batchMaxReadings: int().min(1).max(10_000).default(500),
    lingerMs: int().min(0).max(60_000).default(200),
    maxInflight: int().min(1).max(1000).default(8),
    /** The gateway's own per-vehicle limit is 100/s too; 0 for none. */
    maxPublishesPerSecond: int().min(0).default(100),
    keepaliveS: int().min(5).max(3600).default(30),
    reconnectBaseMs: int().min(10).default(500),
    reconnectMaxMs: int().min(100).default(30_000),
    compress: bool().default(false),
    drainOnStopMs: int().min(0).default(5000),
    opsHost: z.string().default('127.0.0.1'),
    opsPort: int().min(-1).max(65535).default(9101),
    /** Where readings come from: the built-in truck model, or the devices configured below. */
    sensors: z.enum(['simulated', 'hardware']).default('simulated'),
    /** NMEA 0183 GPS receiver on a serial port (8N1). */
    gpsPath: z.string().min(1).optional(),
    gpsBaudRate: int().min(300).max(921_600).default(9600),
    /** ELM327 OBD-II adapter on a serial port: tried at the rate that worked last, this one, then the common rates. */
    obdPath: z.string().min(1).optional(),
    obdBaudRate: int().min(300).max(921_600).default(38400),
    obdPollMs: int().min(100).max(60_000).default(1000),
    /** DS18B20 cargo probes on the 1-Wire bus (kernel w1_therm). */
    oneWire: bool().default(false),
    oneWireRoot: z.string().default('/sys/bus/w1/devices'),
    /** Probe ids (28-…) to read; every DS18B20 on the bus when empty. */
    oneWireIds: list(z.string().regex(/^28-[0-9a-f]{12}$/, 'must be a DS18B20 id like 28-0000075a1b2c')).default([]),
    oneWireIntervalMs: int().min(1000).default(2000),
    /** BCM numbers of the cab's LED and buzzer lines; without them alerts are only logged. */
    ledPin: int().min(0).max(27).optional(),
    buzzerPin: int().min(0).max(27).optional(),
    simSeed: int().default(1),
    /** Every simulated sensor at this rate; unset keeps each sensor's own default rate. */
    simHz: z.coerce.number<unknown>().positive().max(1000).optional(),
    faults: z.array(fault).default([]),
    /** `sync` on a device without a real-time clock: readings wait for GPS or NTP time and are corrected then. */
    clock: z.enum(['system', 'sync']).default('system'),
    /** Exists once NTP has set the system clock; systemd-timesyncd creates this one. */
    clockSyncedFile: z.string().min(1).default('/run/systemd/timesync/synchronized'),
    /** How long unsynced readings wait for a sync before they go out with the system time (flagged unsynced). */
    clockHoldMs: int().min(0).default(120_000),
    /** Run the detector's rules on the truck too, so the cab is warned with no network. */
    edgeRules: bool().default(true),
    /** The rules file (as the detector's); the built-in rules when absent. */
    rulesFile: z.string().optional(),
  })
  .strict()
  .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), { message: 'tlsCert and tlsKey go together', path: ['tlsKey'] })
  .refine((c) => c.sensors !== 'hardware' || c.gpsPath !== undefined || c.obdPath !== undefined || c.oneWire, {
    message: 'hardware sensors need gpsPath, obdPath or oneWire',
    path: ['sensors'],
  });

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export function agentOptions(c: AgentConfig): AgentOptions {
  return {
    vehicle: c.vehicle,
    mqttUrl: c.mqttUrl,
    username: c.username,
    password: c.password,
    tls:
      c.tlsCert && c.tlsKey
        ? { cert: readSettingFile('tlsCert', c.tlsCert), key: readSettingFile('tlsKey', c.tlsKey), ca: c.tlsCa ? readSettingFile('tlsCa', c.tlsCa) : undefined }
        : undefined,
    bufferPath: join(c.dataDir, `${c.vehicle}.buffer.db`),
    bufferMaxBytes: c.bufferMaxBytes,
    memoryBufferMaxReadings: c.memoryBufferMaxReadings,
    synchronous: c.synchronous,
    commitIntervalMs: c.commitIntervalMs,
    batchMaxReadings: c.batchMaxReadings,
    lingerMs: c.lingerMs,
    maxInflight: c.maxInflight,
    maxPublishesPerSecond: c.maxPublishesPerSecond,
    keepaliveS: c.keepaliveS,
    reconnectBaseMs: c.reconnectBaseMs,
    reconnectMaxMs: c.reconnectMaxMs,
    encoding: { encoding: 'binary', compress: c.compress },
    drainOnStopMs: c.drainOnStopMs,
    edgeRules: c.edgeRules ? (c.rulesFile ? parseFile(ruleSetSchema, c.rulesFile) : DEFAULT_RULES) : undefined,
    clock: { trust: c.clock, syncedFile: c.clockSyncedFile, holdMs: c.clockHoldMs },
    opsHost: c.opsHost,
    opsPort: c.opsPort,
  };
}
