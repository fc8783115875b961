import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { z } from 'zod';
import { archiverConfigSchema } from '../../cloud/archiver/archiver-config.js';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { consoleAccessSettings, consoleConfigSchema, DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import { detectorConfigSchema, loadRules } from '../../cloud/detector-config.js';
import { simHzSetting } from '../../agent/agent-config.js';
import { gatewayConfigSchema } from '../../gateway/gateway-config.js';
import { bool, int } from '../../shared/config.js';
import { LOOPBACK_HOST } from '../../shared/defaults.js';
import { awsSettings } from '../../shared/settings.js';
import { createLogger } from '../../shared/log.js';
import { SimulatedFleet } from '../../simulators/simulated-fleet.js';
import { configFrom, runCommand, stopOnSignals, withSettings, type Stoppable } from '../cli-support.js';
import { startArchiver } from './archiver.js';
import { consoleToken } from './console.js';
import { startDetector } from './detector.js';
import { startGateway } from './gateway.js';
import { simConfigSchema } from './sim.js';
import { describedCommand } from '../command-list.js';

/** The demo runs a detector: these settings mean what they mean to `fleet detector`. */
const detectorSettings = detectorConfigSchema.shape;

export const demoConfigSchema = z
  .object({
    trucks: int().min(1).max(5000).default(10).describe('simulated trucks'),
    duration: z.coerce
      .number<unknown>()
      .min(0)
      .default(0)
      .meta({ description: 'run this many seconds, then drain, report and exit', arg: 's', defaultText: 'until Ctrl-C' }),
    json: bool().default(false).describe('with --duration: print a JSON summary as the last line'),
    dataDir: z.string().optional().meta({ description: 'keep state here', defaultText: 'a fresh temporary directory' }),
    host: z.string().default(LOOPBACK_HOST).describe('listen address of gateway and console'),
    port: gatewayConfigSchema.shape.port.describe('MQTT port of the gateway (0 = any free port)'),
    consolePort: consoleConfigSchema.shape.port.describe('HTTP port of the console (0 = any free port)'),
    overheatTruck: int().min(1).default(3).describe('the truck (1-based) whose engine overheats'),
    overheatAt: simConfigSchema.shape.overheatAt,
    simHz: simHzSetting,
    rulesFile: detectorSettings.rulesFile.describe('detector rules (JSON)'),
    windowMs: detectorSettings.windowMs.describe('detector window length'),
    freshnessMs: detectorSettings.freshnessMs.describe(
      'detector freshness limit: alerts from windows older than this behind the vehicle are historical',
    ),
    stream: detectorSettings.source.describe('the stream between gateway and detector'),
    readingsRetentionDays: detectorSettings.readingsRetentionDays,
    store: detectorSettings.store.meta({
      description: 'operational store of detector and console: a SQLite file or a postgres:// URL',
      defaultText: 'DATA_DIR/cloud/fleet.db',
    }),
    kafkaBrokers: detectorSettings.kafkaBrokers.describe('with --stream kafka: comma-separated host:port'),
    awsRegion: awsSettings.awsRegion.describe('with --stream kinesis: AWS region'),
    awsEndpoint: awsSettings.awsEndpoint.describe('with --stream kinesis: AWS endpoint override (an emulator)'),
    archive: bool()
      .default(true)
      .describe('archive every reading as Parquet files under DATA_DIR/archive, written each minute (fleet query --archive file://…)'),
    ...consoleAccessSettings,
  })
  .strict()
  .refine((c) => c.stream !== 'kafka' || c.kafkaBrokers.length > 0, {
    message: '--stream kafka needs --kafka-brokers',
    path: ['kafkaBrokers'],
  });

/** How long the end of a timed run waits for buffers and the detector to catch up. */
const DRAIN_TIMEOUT_MS = 20_000;

export function demoCommand(): Command {
  const cmd = describedCommand('demo');
  return withSettings(cmd, demoConfigSchema).action((flags: Record<string, unknown>) =>
    runCommand(async () => {
      const c = configFrom(demoConfigSchema, flags);
      await runDemo(c);
    }),
  );
}

async function runDemo(c: z.infer<typeof demoConfigSchema>): Promise<void> {
  const dataDir = c.dataDir ?? mkdtempSync(join(tmpdir(), 'fleet-demo-'));
  // The terminal gets the story; the full JSON log goes to a file beside the data.
  const log = createLogger('demo', { file: join(dataDir, 'fleet.log') });
  const say = (line: string) => c.json || process.stdout.write(`${line}\n`);
  const parts: Stoppable[] = [];

  const streamSettings = { kafkaBrokers: c.kafkaBrokers, awsRegion: c.awsRegion, awsEndpoint: c.awsEndpoint };
  const gatewayConfig = gatewayConfigSchema.parse({
    host: c.host,
    port: c.port,
    dataDir: join(dataDir, 'gateway'),
    opsPort: -1,
    sinks: [c.stream],
    ...streamSettings,
  });
  const gateway = await startGateway(gatewayConfig, log.child({ component: 'gateway' }));
  parts.push(gateway);
  const mqttUrl = `mqtt://${c.host}:${gateway.port}`;

  const store = c.store ?? join(dataDir, 'cloud', 'fleet.db');
  const detector = await startDetector(
    detectorConfigSchema.parse({
      dataDir: join(dataDir, 'cloud'),
      source: c.stream,
      ...streamSettings,
      streamPath: join(dataDir, 'gateway', 'stream.db'),
      store,
      readingsRetentionDays: c.readingsRetentionDays,
      rulesFile: c.rulesFile,
      windowMs: c.windowMs,
      freshnessMs: c.freshnessMs,
      mqttUrl,
      opsPort: -1,
    }),
    log.child({ component: 'detector' }),
  );
  parts.push(detector);

  const archiveUrl = pathToFileURL(join(dataDir, 'archive')).href;
  const archiver = c.archive
    ? await startArchiver(
        archiverConfigSchema.parse({
          to: archiveUrl,
          source: c.stream,
          ...streamSettings,
          streamPath: join(dataDir, 'gateway', 'stream.db'),
          dataDir: join(dataDir, 'cloud'),
          // Files within a minute, so someone trying the demo finds readings in the archive.
          flushAgeMs: 60_000,
          opsPort: -1,
        }),
        log.child({ component: 'archiver' }),
      )
    : undefined;
  if (archiver) parts.push(archiver);

  const consoleLog = log.child({ component: 'console' });
  const token = consoleToken(c, consoleLog);
  const consoleServer = new ConsoleServer(
    {
      host: c.host,
      port: c.consolePort,
      store,
      mqttUrl,
      serviceToken: gatewayConfig.serviceToken,
      consoleToken: token,
      consoleUsers: c.consoleUsers,
      publicReads: c.publicReads,
      tileUrl: c.tileUrl,
      tileAttribution: c.tileAttribution,
      rules: loadRules(c),
    },
    consoleLog,
  );
  await consoleServer.start();
  parts.push(consoleServer);

  const fleet = new SimulatedFleet(
    {
      count: c.trucks,
      prefix: 'truck-',
      mqttUrl,
      dataDir: join(dataDir, 'trucks'),
      simHz: c.simHz,
      overheat: c.overheatTruck <= c.trucks ? { truck: c.overheatTruck, atS: c.overheatAt } : undefined,
    },
    log.child({ component: 'agent' }),
  );
  await fleet.start();
  parts.push(fleet);

  say(`fleet demo: ${c.trucks} trucks, gateway ${mqttUrl}, stream ${c.stream}, data in ${dataDir}`);
  // The token is shown only when it is the development default: a configured secret stays off the terminal.
  const signIn =
    token === DEV_CONSOLE_TOKEN ? `sign in with any name and token ${token}` : 'sign in with a configured user or the console token';
  say(`fleet console: ${consoleServer.url}  (${signIn})`);
  if (archiver) say(`archive: ${archiveUrl}  (fleet query "SELECT count(*) FROM readings" --archive ${archiveUrl})`);
  const announced = new Set<string>();
  const announcer = setInterval(() => {
    for (const { driver, agent } of fleet.trucks) {
      for (const { alert } of driver.shown) {
        if (announced.has(alert.id)) continue;
        announced.add(alert.id);
        say(`cab alert ${agent.opts.vehicle}: ${alert.severity} ${alert.rule}: ${alert.message}`);
      }
    }
  }, 500);
  parts.push({ stop: async () => clearInterval(announcer) });

  if (c.duration === 0) {
    stopOnSignals(parts);
    return;
  }
  await new Promise((r) => setTimeout(r, c.duration * 1000));
  const drained = await fleet.drain(DRAIN_TIMEOUT_MS);
  const produced = fleet.readingsProduced();
  const deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while ((await detector.store.counts()).readingsStored < produced && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const { readingsStored, duplicates } = await detector.store.counts();
  await archiver?.finish();
  const latencies = fleet.trucks.flatMap((t) => t.driver.shown.map((s) => s.shownAt - s.alert.closedAt)).sort((a, b) => a - b);
  const summary = {
    vehicles: c.trucks,
    readingsProduced: produced,
    readingsStored,
    duplicates,
    lost: produced - readingsStored,
    ...(archiver ? { readingsArchived: archiver.totals.readings } : {}),
    alertsRaised: Object.values(await detector.store.alertCountsByState()).reduce((a, b) => a + b, 0),
    driverAlertsDelivered: latencies.length,
    p50AlertLatencyMs: percentile(latencies, 0.5),
    p99AlertLatencyMs: percentile(latencies, 0.99),
  };
  if (!drained) log.warn('some trucks still had buffered readings at the end of the run');
  for (const part of [...parts].reverse()) if (part !== archiver) await part.stop();
  say(`run over: ${JSON.stringify(summary, null, 1).replace(/\n\s*/g, ' ')}`);
  if (c.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(0);
}

function percentile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
