import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleServer } from '../../cloud/console/console-server.js';
import { DEV_CONSOLE_TOKEN } from '../../cloud/console-config.js';
import type { Detector } from '../../cloud/detector.js';
import { detectorConfigSchema } from '../../cloud/detector-config.js';
import type { Gateway } from '../../gateway/gateway.js';
import { gatewayConfigSchema, type GatewayConfig } from '../../gateway/gateway-config.js';
import { startDetector } from '../../bin/commands/detector.js';
import { startGateway } from '../../bin/commands/gateway.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { freePort } from './harness.js';
import { queryFile } from './sqlite.js';

export interface CloudOptions {
  dir: string;
  /** A rules document (written to a file, as users configure it). */
  rules?: unknown;
  freshnessMs?: number;
  withConsole?: boolean;
  gateway?: Partial<GatewayConfig>;
  /** Detector settings beyond the defaults (source, brokers ...). */
  detector?: Record<string, unknown>;
}

/** Gateway, detector and (optionally) console in this process, on real sockets and SQLite files. */
export class Cloud {
  gateway!: Gateway;
  detector!: Detector;
  console?: ConsoleServer;
  readonly log: Logger;
  private gatewayConfig!: GatewayConfig;

  constructor(readonly opts: CloudOptions) {
    this.log = createLogger('test', { file: join(opts.dir, 'cloud.log') });
  }

  get mqttUrl(): string {
    return `mqtt://127.0.0.1:${this.gatewayConfig.port}`;
  }

  /** Where the cloud's own services connect: the plain service listener when the gateway has one (mtls). */
  get serviceMqttUrl(): string {
    const port = this.gatewayConfig.servicePort >= 0 ? this.gatewayConfig.servicePort : this.gatewayConfig.port;
    return `mqtt://127.0.0.1:${port}`;
  }

  async start(): Promise<this> {
    const { dir } = this.opts;
    this.gatewayConfig = gatewayConfigSchema.parse({
      port: await freePort(),
      dataDir: join(dir, 'gateway'),
      opsPort: -1,
      ...this.opts.gateway,
    });
    await this.startGateway();
    let rulesFile: string | undefined;
    if (this.opts.rules !== undefined) {
      rulesFile = join(dir, 'rules.json');
      writeFileSync(rulesFile, JSON.stringify(this.opts.rules));
    }
    this.detector = await startDetector(
      detectorConfigSchema.parse({
        dataDir: join(dir, 'cloud'),
        streamPath: join(dir, 'gateway', 'stream.db'),
        rulesFile,
        freshnessMs: this.opts.freshnessMs,
        mqttUrl: this.serviceMqttUrl,
        opsPort: -1,
        ...this.opts.detector,
      }),
      this.log.child({ component: 'detector' }),
    );
    if (this.opts.withConsole) {
      this.console = new ConsoleServer(
        {
          host: '127.0.0.1',
          port: 0,
          // The detector's store, wherever it is.
          store: (this.opts.detector?.store as string | undefined) ?? join(dir, 'cloud', 'fleet.db'),
          mqttUrl: this.serviceMqttUrl,
          serviceToken: this.gatewayConfig.serviceToken,
          consoleToken: DEV_CONSOLE_TOKEN,
        },
        this.log.child({ component: 'console' }),
      );
      await this.console.start();
    }
    return this;
  }

  /** (Re)starts the gateway on the same port and files. */
  async startGateway(): Promise<void> {
    this.gateway = await startGateway(this.gatewayConfig, this.log.child({ component: 'gateway' }));
  }

  async stopGateway(): Promise<void> {
    await this.gateway.stop();
  }

  async stop(): Promise<void> {
    await this.console?.stop();
    await this.detector.stop();
    await this.gateway.stop();
  }
}

/** Distinct seqs the cloud stored for a vehicle. */
export function storedSeqs(detector: Detector, vehicle: string): number[] {
  return queryFile<{ seq: number }>(detector.store.location, 'SELECT seq FROM readings WHERE vehicle = ? ORDER BY seq', vehicle).map(
    (r) => r.seq,
  );
}
