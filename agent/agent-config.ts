import { join } from 'node:path';
import { z } from 'zod';
import { bool, int, list, parseFile, readSettingFile } from '../shared/config.js';
import { DATA_DIRS, OPS_PORTS } from '../shared/defaults.js';
import { gatewayUrls, opsSettings } from '../shared/settings.js';
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

/** Every simulated sensor at this rate (the simulated agent, `fleet sim` and `fleet demo`). */
export const simHzSetting = z.coerce
  .number<unknown>()
  .positive()
  .max(1000)
  .optional()
  .meta({ description: 'sample every simulated sensor at this rate', defaultText: "each sensor's own rate" });

export const agentConfigSchema = z
  .object({
    vehicle: z
      .string()
      .regex(VEHICLE_ID, 'must be 1-64 characters of A-Z a-z 0-9 _ -')
      .describe('vehicle id (also the MQTT client id and topic segment)'),
    mqttUrl: gatewayUrls,
    username: z.string().optional().describe('MQTT username'),
    password: z.string().optional().meta({ description: 'MQTT password, the vehicle secret from "fleet device add"', secret: true }),
    tlsCert: z.string().optional().describe("for an mqtts:// gateway in mtls mode: this vehicle's certificate (scripts/pki.sh enroll)"),
    tlsKey: z.string().optional().describe('its private key'),
    tlsCa: z.string().optional().describe("the fleet CA that signed the gateway's certificate"),
    dataDir: z.string().default(DATA_DIRS.agent).describe('where the buffer lives'),
    bufferMaxBytes: int()
      .min(64 * 1024)
      .default(256 * 1024 * 1024)
      .describe('buffer cap; beyond it GPS, then speed/rpm, then temperatures are evicted oldest first'),
    // ~10 MB; at the default rates over an hour and a half.
    memoryBufferMaxReadings: int()
      .min(1)
      .max(10_000_000)
      .default(50_000)
      .describe('while the disk refuses writes, hold at most this many samples in memory, dropping GPS first'),
    synchronous: z.enum(['FULL', 'NORMAL']).default('FULL').describe('SQLite synchronous: FULL survives power cuts, NORMAL only crashes'),
    commitIntervalMs: int().min(1).max(10_000).default(50).describe('group commit interval: one fsync for the samples of this long'),
    batchMaxReadings: int().min(1).max(10_000).default(500).describe('readings per MQTT publish at most'),
    lingerMs: int().min(0).max(60_000).default(200).describe('wait this long for a batch to fill'),
    maxInflight: int().min(1).max(1000).default(8).describe('unacknowledged publishes at most'),
    // The gateway's own per-vehicle limit is 100/s too.
    maxPublishesPerSecond: int()
      .min(0)
      .default(100)
      .describe('publishes per second at most, as AWS IoT Core allows 100 per connection; 0 for no limit'),
    keepaliveS: int().min(5).max(3600).default(30).describe('MQTT keepalive'),
    reconnectBaseMs: int().min(10).default(500).describe('first reconnect delay; doubles with jitter'),
    reconnectMaxMs: int().min(100).default(30_000).describe('longest reconnect delay'),
    compress: bool().default(false).describe('deflate batches on the wire'),
    drainOnStopMs: int().min(0).default(5000).describe('on SIGTERM, keep sending the buffer this long before exiting'),
    ...opsSettings(OPS_PORTS.agent),
    sensors: z
      .enum(['simulated', 'hardware'])
      .default('simulated')
      .describe('where readings come from: the truck model, or the devices below'),
    gpsPath: z.string().min(1).optional().describe('NMEA 0183 GPS receiver serial port (8N1), e.g. /dev/fleet-gps'),
    gpsBaudRate: int().min(300).max(921_600).default(9600).meta({ description: 'GPS serial speed', arg: 'baud' }),
    obdPath: z.string().min(1).optional().describe('ELM327 OBD-II adapter serial port, e.g. /dev/fleet-obd'),
    obdBaudRate: int().min(300).max(921_600).default(38400).meta({
      description: 'ELM327 serial speed, tried after the rate that worked last and before 38400, 9600, 115200, 57600, 230400, 500000',
      arg: 'baud',
    }),
    obdPollMs: int()
      .min(100)
      .max(60_000)
      .default(1000)
      .describe('OBD-II poll cycle: speed, coolant, rpm and load each cycle, intake, ambient, fuel and voltage in turn'),
    oneWire: bool().default(false).describe('read DS18B20 cargo probes on the 1-Wire bus (kernel w1_therm)'),
    oneWireRoot: z.string().default('/sys/bus/w1/devices').describe('1-Wire sysfs root'),
    oneWireIds: list(z.string().regex(/^28-[0-9a-f]{12}$/, 'must be a DS18B20 id like 28-0000075a1b2c'))
      .default([])
      .meta({
        description: 'comma-separated probe ids (28-…)',
        defaultText: 'all on the bus',
      }),
    // A conversion takes 750 ms.
    oneWireIntervalMs: int().min(1000).default(2000).describe('how often the probes are read'),
    ledPin: int()
      .min(0)
      .max(27)
      .optional()
      .meta({ description: 'BCM number of the cab LED (with buzzerPin: alerts drive GPIO; without, they are only logged)', arg: 'bcm' }),
    buzzerPin: int().min(0).max(27).optional().meta({ description: 'BCM number of the cab buzzer transistor', arg: 'bcm' }),
    simSeed: int().default(1).describe('seed of the simulated truck'),
    simHz: simHzSetting,
    overheatAt: z.coerce
      .number<unknown>()
      .min(0)
      .optional()
      .meta({ description: 'simulated engine overheat starting this many seconds after start', arg: 's' }),
    // Not a flag: a list of objects, written in the config file.
    faults: z.array(fault).default([]).meta({ description: 'simulated faults, each from a number of seconds after start', flag: false }),
    clock: z
      .enum(['system', 'sync'])
      .default('system')
      .describe(
        'system: the system clock is right from boot; sync: no real-time clock, readings wait for GPS or NTP time and are corrected then',
      ),
    // systemd-timesyncd creates this one.
    clockSyncedFile: z.string().min(1).default('/run/systemd/timesync/synchronized').describe('exists once NTP has set the clock'),
    clockHoldMs: int()
      .min(0)
      .default(120_000)
      .describe('with clock sync, how long readings wait for a sync before going out flagged unsynced'),
    edgeRules: bool().default(true).describe('evaluate the rules on the truck too, so the cab is warned with no network'),
    rulesFile: z
      .string()
      .optional()
      .meta({ description: 'rules for the edge evaluation, as the detector uses', defaultText: 'built-in rules' }),
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
    ...c,
    tls:
      c.tlsCert && c.tlsKey
        ? {
            cert: readSettingFile('tlsCert', c.tlsCert),
            key: readSettingFile('tlsKey', c.tlsKey),
            ca: c.tlsCa ? readSettingFile('tlsCa', c.tlsCa) : undefined,
          }
        : undefined,
    bufferPath: join(c.dataDir, `${c.vehicle}.buffer.db`),
    encoding: { encoding: 'binary', compress: c.compress },
    edgeRules: c.edgeRules ? (c.rulesFile ? parseFile(ruleSetSchema, c.rulesFile) : DEFAULT_RULES) : undefined,
    clock: { trust: c.clock, syncedFile: c.clockSyncedFile, holdMs: c.clockHoldMs },
  };
}
